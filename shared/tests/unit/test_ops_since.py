"""`gala ops replay --since`: an ISO 8601 time or a duration back from now."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from gala.ops import OpsError, parse_since

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", NOW - timedelta(seconds=90)),
        ("15m", NOW - timedelta(minutes=15)),
        ("2h", NOW - timedelta(hours=2)),
        ("1d", NOW - timedelta(days=1)),
        ("2025-06-01T10:30:00Z", datetime(2025, 6, 1, 10, 30, tzinfo=UTC)),
        ("2025-06-01T10:30:00", datetime(2025, 6, 1, 10, 30, tzinfo=UTC)),
        (
            "2025-06-01T12:30:00+02:00",
            datetime(2025, 6, 1, 12, 30, tzinfo=timezone(timedelta(hours=2))),
        ),
    ],
)
def test_since_reads_times_and_durations(text, expected):
    assert parse_since(text, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "15 minutes", "-5m", ""])
def test_since_refuses_anything_else_in_one_line(text):
    with pytest.raises(OpsError, match="neither an ISO 8601 time nor a duration"):
        parse_since(text, NOW)
