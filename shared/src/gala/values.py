"""Small value helpers every service's domain and repositories share."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Final

from gala.errors import InvalidInput


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


def json_object(value: Any, what: str, max_bytes: int) -> dict[str, Any] | None:
    """Free-form JSON a client keeps with a record (custom fields, settings): an object,
    kept as given, at most ``max_bytes`` as compact JSON; ``None`` stays ``None``."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidInput(f"{what} must be a JSON object.")
    if len(json.dumps(value, separators=(",", ":")).encode()) > max_bytes:
        raise InvalidInput(f"{what} may take at most {max_bytes} bytes as JSON.")
    return value
