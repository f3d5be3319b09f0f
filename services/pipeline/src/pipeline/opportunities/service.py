"""Use cases for opportunities: load, let the domain decide, book the room, save.

Staff use cases are scoped to the caller's venue (another venue's opportunity is "not
found"); ADMIN and SALES change opportunities, PROJECT_MANAGER may read them. A change
that leaves the opportunity holding a room and day first claims it (see rooms/), then
saves (the events ride along), then releases the room and day it no longer holds. A
save that lost a race with another change is recomputed from a fresh read. After each
write the board's read model takes the opportunity's new version (board/service.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from gala.concurrency import save_attempts
from gala.identity import Principal, ensure_role
from gala.store import utc_now
from gala.values import UNSET, Unset
from pipeline.board.service import BoardReadModel
from pipeline.contacts.service import ContactDirectory
from pipeline.opportunities.domain import (
    InvalidOpportunity,
    Opportunity,
    OpportunityChangedConcurrently,
    OpportunityNotFound,
    OpportunityPatch,
    RoomRef,
    check_capacity,
)
from pipeline.opportunities.repository import OpportunityFilter, OpportunityRepository
from pipeline.roles import READERS, WRITERS
from pipeline.rooms.domain import RoomBusy, RoomNotFound
from pipeline.rooms.repository import RoomRepository
from pipeline.rooms.service import Bookings
from pipeline.stages.domain import PipelineSetup, Stage, StagesChangedDuringMove
from pipeline.stages.repository import SetupRepository

Clock = Callable[[], datetime]
Change = Callable[[Opportunity, PipelineSetup], bool]
"""Changes an opportunity in place; ``False`` when there was nothing to change."""


class OpportunityService:
    def __init__(
        self,
        opportunities: OpportunityRepository,
        setups: SetupRepository,
        rooms: RoomRepository,
        contacts: ContactDirectory,
        board: BoardReadModel,
        clock: Clock = utc_now,
    ) -> None:
        self._opportunities = opportunities
        self._board = board
        self._setups = setups
        self._rooms = rooms
        self._contacts = contacts
        self._bookings = Bookings(rooms, opportunities, clock)
        self._clock = clock

    # --- staff ------------------------------------------------------------------------

    async def create(
        self,
        principal: Principal,
        *,
        contact_id: str,
        room_id: str | None = None,
        **details: Any,
    ) -> Opportunity:
        ensure_role(principal, WRITERS, "open opportunities")
        venue_id = principal.venue_id
        contact = await self._contacts.require(venue_id, contact_id)
        room = await self._room(venue_id, room_id) if room_id else None
        setup = await self._setups.get(venue_id)
        opportunity = Opportunity.create(
            venue_id=venue_id,
            contact=contact,
            setup=setup,
            room=room,
            now=self._clock(),
            **details,
        )
        if opportunity.room_claim is not None:
            await self._bookings.claim(venue_id, opportunity.room_claim, opportunity.id, 1)
        try:
            await self._opportunities.insert(opportunity)
        except DuplicateKeyError:
            raise RoomBusy() from None  # fenced: its stalled claim was taken over
        await self._board.written(opportunity)
        if await self._contacts.is_erased(venue_id, contact.id):
            # erased between the check and the insert: forget the copied name too
            await self._opportunities.set_contact_name(venue_id, contact.id, None)
        return opportunity

    async def get(self, principal: Principal, opportunity_id: str) -> Opportunity:
        ensure_role(principal, READERS, "see opportunities")
        return await self._load(principal.venue_id, opportunity_id)

    async def list(
        self, principal: Principal, where: OpportunityFilter, limit: int, cursor: str | None
    ) -> tuple[list[Opportunity], str | None]:
        ensure_role(principal, READERS, "list opportunities")
        if where.stage_id is not None:
            stage = (await self._setups.get(principal.venue_id)).stage(where.stage_id)
            if stage is None:
                raise InvalidOpportunity(f"The venue's pipeline has no stage {where.stage_id!r}.")
            where = replace(where, stage_id=stage.id)
        return await self._opportunities.page(principal.venue_id, where, limit, cursor)

    async def update(
        self,
        principal: Principal,
        opportunity_id: str,
        *,
        fields: dict[str, Any],
        contact_id: str | None = None,
        room_id: str | Unset | None = UNSET,
    ) -> Opportunity:
        """``fields`` are OpportunityPatch fields; references are resolved here."""
        ensure_role(principal, WRITERS, "change opportunities")
        venue_id = principal.venue_id
        resolved: dict[str, Any] = dict(fields)
        if contact_id is not None:
            resolved["contact"] = await self._contacts.require(venue_id, contact_id)
        if not isinstance(room_id, Unset):
            resolved["room"] = await self._room(venue_id, room_id) if room_id else None
        patch = OpportunityPatch(**resolved)

        def change(opportunity: Opportunity, setup: PipelineSetup) -> bool:
            opportunity.update(patch, setup, self._clock())
            return bool(opportunity.pending_events)

        return await self._change(venue_id, opportunity_id, change)

    async def win(self, principal: Principal, opportunity_id: str) -> Opportunity:
        ensure_role(principal, WRITERS, "win opportunities")
        return await self._change(
            principal.venue_id, opportunity_id, lambda o, s: o.win(s, self._clock())
        )

    async def lose(self, principal: Principal, opportunity_id: str, reason: str) -> Opportunity:
        ensure_role(principal, WRITERS, "lose opportunities")
        return await self._change(
            principal.venue_id, opportunity_id, lambda o, s: o.lose(reason, s, self._clock())
        )

    # --- what other services tell us --------------------------------------------------

    async def hint(
        self,
        venue_id: str,
        opportunity_id: str,
        pick: Callable[[PipelineSetup], tuple[Stage, str | None] | None],
    ) -> bool:
        """Move an open opportunity forward to the stage ``pick`` names (and only from the
        stage it names, if any); an unknown opportunity or a move that is not forward
        changes nothing. ``True`` if it moved."""
        if await self._opportunities.get(venue_id, opportunity_id) is None:
            return False
        moved = False

        def change(opportunity: Opportunity, setup: PipelineSetup) -> bool:
            nonlocal moved
            target = pick(setup)
            if target is None:
                return False
            moved = opportunity.advance(target[0], setup, self._clock(), only_from=target[1])
            return moved

        await self._change(venue_id, opportunity_id, change)
        return moved

    # --- internals --------------------------------------------------------------------

    async def _room(self, venue_id: str, room_id: str) -> RoomRef:
        room = await self._rooms.get(venue_id, room_id)
        if room is None:
            raise RoomNotFound(room_id)
        return RoomRef(room.id, room.name, room.capacity)

    async def _ensure_stage_kept(
        self, venue_id: str, opportunity: Opportunity, stage_before: str
    ) -> None:
        """After a move: the stage must still be there as it was. A change of the stages
        that raced this move (it checked for opportunities before this one landed) has
        removed, renamed or re-purposed it: the move is undone, and refused. (The stages'
        side checks again after its own write, so one of the two always sees the other.)"""
        setup = await self._setups.get(venue_id)
        stage = setup.by_id(opportunity.stage_id)
        if stage is not None and stage.name == opportunity.stage:
            return
        if setup.by_id(stage_before) is not None:
            back = OpportunityPatch(stage=stage_before)

            def undo(o: Opportunity, current: PipelineSetup) -> bool:
                o.update(back, current, self._clock())
                return bool(o.pending_events)

            await self._change(venue_id, opportunity.id, undo, verify_stage=False)
        raise StagesChangedDuringMove()

    async def _load(self, venue_id: str, opportunity_id: str) -> Opportunity:
        opportunity = await self._opportunities.get(venue_id, opportunity_id)
        if opportunity is None:
            raise OpportunityNotFound()
        return opportunity

    async def _change(
        self, venue_id: str, opportunity_id: str, change: Change, *, verify_stage: bool = True
    ) -> Opportunity:
        async for _ in save_attempts():
            opportunity = await self._load(venue_id, opportunity_id)
            setup = await self._setups.get(venue_id)
            held = opportunity.room_claim
            stage_before = opportunity.stage_id
            if not change(opportunity, setup):
                return opportunity
            if opportunity.room_assignment and opportunity.guest_count is not None:
                check_capacity(
                    await self._room(venue_id, opportunity.room_assignment),
                    opportunity.guest_count,
                )
            wanted = opportunity.room_claim
            saved_version = opportunity.version + 1
            if wanted is not None:
                await self._bookings.claim(venue_id, wanted, opportunity.id, saved_version)
            if await self._opportunities.save(opportunity):
                await self._board.written(opportunity)
                if held is not None and held != wanted:
                    await self._bookings.release(
                        venue_id, held, opportunity.id, up_to_version=saved_version
                    )
                if verify_stage and opportunity.stage_id != stage_before:
                    await self._ensure_stage_kept(venue_id, opportunity, stage_before)
                return opportunity
            # Lost a race: a claim made for this attempt is stale now (this version never
            # lands) and is refreshed or taken over later; deleting it could delete the
            # claim of the concurrent change that won, when both wanted the same day.
        raise OpportunityChangedConcurrently()
