"""Use cases for rooms, and booking a room for a day (claims) without double bookings."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from gala.identity import Principal, ensure_role
from gala.store import utc_now
from pipeline.roles import WRITERS
from pipeline.rooms.domain import (
    ClaimState,
    Room,
    RoomBusy,
    RoomMissing,
    RoomNameTaken,
    RoomTaken,
    claim_state,
    split_key,
)
from pipeline.rooms.repository import Claim, RoomRepository, from_document

CLAIM_ATTEMPTS = 20
Clock = Callable[[], datetime]


class RoomService:
    def __init__(self, rooms: RoomRepository, clock: Clock = utc_now) -> None:
        self._rooms = rooms
        self._clock = clock

    async def create(self, principal: Principal, name: str, capacity: int) -> Room:
        ensure_role(principal, WRITERS, "add rooms")
        room = Room.create(
            venue_id=principal.venue_id, name=name, capacity=capacity, now=self._clock()
        )
        if not await self._rooms.add(room):
            raise RoomNameTaken(room.name)
        return room

    async def list(
        self, principal: Principal, limit: int, cursor: str | None
    ) -> tuple[list[Room], str | None]:
        ensure_role(principal, WRITERS, "list rooms")
        page = await self._rooms.page(principal.venue_id, limit, cursor)
        return [from_document(d) for d in page.items], page.next_cursor

    async def get(self, principal: Principal, room_id: str) -> Room:
        ensure_role(principal, WRITERS, "see rooms")
        room = await self._rooms.get(principal.venue_id, room_id)
        if room is None:
            raise RoomMissing()
        return room


class Holders(Protocol):
    """The opportunities a claim names (implemented by the opportunities repository)."""

    async def holder_state(self, opportunity_id: str) -> _HolderState | None: ...

    async def fence(self, opportunity_id: str, version: int | None) -> bool: ...


class _HolderState(Protocol):
    @property
    def version(self) -> int: ...

    @property
    def room_claim(self) -> str | None: ...


class Bookings:
    """Claims rooms for days on behalf of opportunities."""

    def __init__(self, rooms: RoomRepository, holders: Holders, clock: Clock = utc_now) -> None:
        self._rooms = rooms
        self._holders = holders
        self._clock = clock

    async def claim(self, venue_id: str, key: str, opportunity_id: str, version: int) -> None:
        """Claim ``key`` for the opportunity, whose save will give it ``version``.

        Raises :class:`RoomTaken` naming the opportunity that holds it (or is claiming it).
        """
        for _ in range(CLAIM_ATTEMPTS):
            now = self._clock()
            if await self._rooms.insert_claim(venue_id, key, opportunity_id, version, now):
                return
            current = await self._rooms.get_claim(venue_id, key)
            if current is None:
                continue  # released meanwhile
            if current.opportunity_id == opportunity_id:
                if await self._rooms.replace_claim(venue_id, current, opportunity_id, version, now):
                    return
                continue
            if await self._take_over(venue_id, current, opportunity_id, version, now):
                return
        raise RoomBusy()

    async def _take_over(
        self, venue_id: str, current: Claim, opportunity_id: str, version: int, now: datetime
    ) -> bool:
        holder = await self._holders.holder_state(current.opportunity_id)
        state = claim_state(
            current.key,
            expected_version=current.version,
            claimed_at=current.claimed_at,
            holder_version=holder.version if holder else None,
            holder_claim=holder.room_claim if holder else None,
            now=now,
        )
        if state in (ClaimState.HELD, ClaimState.PENDING):
            room_id, day = split_key(current.key)
            raise RoomTaken(room_id, day, current.opportunity_id)
        if state == ClaimState.ABANDONED:
            fenced = await self._holders.fence(
                current.opportunity_id, holder.version if holder else None
            )
            if not fenced:
                return False  # the holder moved meanwhile: look again
        return await self._rooms.replace_claim(venue_id, current, opportunity_id, version, now)

    async def release(
        self, venue_id: str, key: str, opportunity_id: str, *, up_to_version: int
    ) -> None:
        await self._rooms.release(venue_id, key, opportunity_id, up_to_version=up_to_version)
