from datetime import UTC, datetime

import pytest

from gala.events.envelope import Envelope, MalformedEnvelope


def sample() -> Envelope:
    return Envelope(
        id="e-1",
        type="gala.widget.made.v1",
        source="/gala/factory",
        subject="w-1",
        time=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        data=b'{"widgetId":"w-1"}',
        venueid="venue-1",
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        correlationid="c-1",
    )


def test_binary_mode_headers_carry_every_attribute():
    headers = dict(sample().headers())
    assert headers["ce_specversion"] == b"1.0"
    assert headers["ce_id"] == b"e-1"
    assert headers["ce_type"] == b"gala.widget.made.v1"
    assert headers["ce_source"] == b"/gala/factory"
    assert headers["ce_subject"] == b"w-1"
    assert headers["content-type"] == b"application/json"
    assert headers["ce_venueid"] == b"venue-1"
    assert headers["ce_traceparent"].startswith(b"00-0af7")
    assert "ce_causationid" not in headers  # absent extensions are not sent empty


def test_round_trip_through_kafka_headers():
    original = sample()
    decoded = Envelope.from_kafka(original.headers(), original.data)
    assert decoded == original
    assert original.key == b"w-1"


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ([], "not a CloudEvents 1.0"),
        ([("ce_specversion", b"0.3")], "not a CloudEvents 1.0"),
        ([("ce_specversion", b"1.0"), ("ce_id", b"x")], "missing CloudEvents attributes"),
        ([("ce_specversion", b"\xff")], "not UTF-8"),
    ],
)
def test_malformed_messages_are_refused(headers, reason):
    with pytest.raises(MalformedEnvelope, match=reason):
        Envelope.from_kafka(headers, b"{}")


def test_bad_time_is_refused():
    headers = [h for h in sample().headers() if h[0] != "ce_time"] + [("ce_time", b"yesterday")]
    with pytest.raises(MalformedEnvelope, match="RFC 3339"):
        Envelope.from_kafka(headers, b"{}")
