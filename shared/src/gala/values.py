"""Small value helpers every service's domain and repositories share."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum
from typing import Any, Final


class Unset(Enum):
    """ "Not given" in a patch, as opposed to ``None`` ("remove it")."""

    UNSET = "unset"


UNSET: Final = Unset.UNSET


def as_utc(value: Any) -> datetime | None:
    """A datetime read from the store, made timezone-aware in UTC (or ``None``)."""
    return value.astimezone(UTC) if isinstance(value, datetime) else None
