"""A venue's rooms, and the rule that one room is booked once a day.

Pure: no I/O. A room has a name (unique in its venue, ignoring case) and a capacity.
A booking is a *claim*: a document keyed by room and UTC day, naming the opportunity
that holds it and the version that opportunity will have once its save lands. The
store's unique key makes exactly one of many concurrent claimers win, across replicas.

A claim is *held* while the opportunity it names holds that room and day; it is
*pending* while that opportunity has not yet saved the version the claim expects (a
claimer is between its claim and its save); otherwise it is *stale* (the holder moved
on and has not yet released it, or crashed after claiming) and may be taken over. A
pending claim older than ``PENDING_GRACE`` is from a claimer that died (or stalled): it
is taken over after fencing the claimer's save (its expected version is made
unreachable; a creation that never landed gets a tombstone in its place, so its late
insert fails), so a late save cannot double-book.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from gala.errors import Conflict, GalaError, InvalidInput, NotFound

NAME_MAX: Final = 100
CAPACITY_MAX: Final = 100_000
PENDING_GRACE: Final = timedelta(seconds=15)


class RoomError(GalaError):
    """Base of the rooms module's errors."""


class InvalidRoom(RoomError, InvalidInput):
    pass


class RoomNotFound(RoomError, InvalidInput):
    """An opportunity names a room the venue does not have (422: the input is wrong)."""

    def __init__(self, room_id: str) -> None:
        super().__init__(f"The venue has no room {room_id!r}.", roomId=room_id)


class RoomMissing(RoomError, NotFound):
    def __init__(self) -> None:
        super().__init__("No such room in this venue.")


class RoomNameTaken(RoomError, Conflict):
    def __init__(self, name: str) -> None:
        super().__init__(f"The venue has a room named {name!r} already.")


class RoomTaken(RoomError, Conflict):
    def __init__(self, room_id: str, day: str, holder: str) -> None:
        super().__init__(
            f"The room is booked on {day} by opportunity {holder}.",
            roomId=room_id,
            day=day,
            conflictingOpportunityId=holder,
        )


class RoomBusy(RoomError, Conflict):
    def __init__(self) -> None:
        super().__init__("The room's booking kept changing meanwhile; try again.")


def normalize_name(value: str) -> str:
    name = " ".join(value.split())
    if not name:
        raise InvalidRoom("A room needs a name.")
    if len(name) > NAME_MAX:
        raise InvalidRoom(f"A room name has at most {NAME_MAX} characters.")
    return name


@dataclass(frozen=True)
class Room:
    id: str
    venue_id: str
    name: str
    capacity: int
    created_at: datetime

    @classmethod
    def create(cls, *, venue_id: str, name: str, capacity: int, now: datetime) -> Room:
        if not 1 <= capacity <= CAPACITY_MAX:
            raise InvalidRoom(f"A capacity is from 1 to {CAPACITY_MAX}.")
        return cls(str(uuid.uuid4()), venue_id, normalize_name(name), capacity, now)


class ClaimState(StrEnum):
    HELD = "held"
    PENDING = "pending"
    ABANDONED = "abandoned"
    STALE = "stale"


def claim_state(
    key: str,
    *,
    expected_version: int,
    claimed_at: datetime,
    holder_version: int | None,
    holder_claim: str | None,
    now: datetime,
) -> ClaimState:
    """What a claim on ``key`` is worth, given its holder's current state (None: gone)."""
    if holder_claim == key:
        return ClaimState.HELD
    if holder_version is None or holder_version < expected_version:
        if now - claimed_at < PENDING_GRACE:
            return ClaimState.PENDING
        return ClaimState.ABANDONED
    return ClaimState.STALE


def split_key(key: str) -> tuple[str, str]:
    room_id, _, day = key.rpartition("|")
    return room_id, day
