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


def required_utc(value: Any) -> datetime:
    """A datetime the store must hold, in UTC (a document without it is corrupt)."""
    if not isinstance(value, datetime):
        raise ValueError(f"expected a stored datetime, found {value!r}")
    return value.astimezone(UTC)


def utc_millis(value: datetime) -> datetime:
    """A moment as the store keeps it: UTC, to the millisecond (a naive one is taken as
    UTC). Normalise input with it, so what is saved compares equal to what is read."""
    moment = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)
