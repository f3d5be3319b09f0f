"""Use cases for a venue's pipeline setup: its stages and its currency."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from gala.concurrency import save_attempts
from gala.identity import Principal, ensure_role
from gala.store import utc_now
from pipeline.opportunities.repository import OpportunityRepository
from pipeline.roles import ADMINS, READERS, WRITERS
from pipeline.stages.domain import (
    CurrencyInUse,
    PipelineSetup,
    SetupChangedConcurrently,
    StageDraft,
    StagesInUse,
)
from pipeline.stages.repository import SetupRepository

Clock = Callable[[], datetime]


class SetupService:
    def __init__(
        self,
        setups: SetupRepository,
        opportunities: OpportunityRepository,
        clock: Clock = utc_now,
    ) -> None:
        self._setups = setups
        self._opportunities = opportunities
        self._clock = clock

    async def get_stages(self, principal: Principal) -> PipelineSetup:
        ensure_role(principal, READERS, "see the stages")
        return await self._setups.get(principal.venue_id)

    async def put_stages(self, principal: Principal, drafts: Sequence[StageDraft]) -> PipelineSetup:
        ensure_role(principal, WRITERS, "change the stages")
        venue_id = principal.venue_id
        async for _ in save_attempts():
            setup = await self._setups.get(venue_id)
            plan = setup.plan(drafts)
            counts = await self._opportunities.count_open_in(venue_id, list(plan.affected))
            if counts:
                raise StagesInUse({plan.affected[sid]: n for sid, n in counts.items()})
            before = setup.copy()
            setup.apply(plan, self._clock())
            if not await self._setups.save(setup):
                continue
            # An opportunity may have moved into an affected stage between the count and
            # this save (it checked the old stages): count again; if so, put them back.
            counts = await self._opportunities.count_open_in(venue_id, list(plan.affected))
            if counts:
                before.version, before.updated_at = setup.version, self._clock()
                await self._setups.save(before)
                raise StagesInUse({plan.affected[sid]: n for sid, n in counts.items()})
            return setup
        raise SetupChangedConcurrently()

    async def get_settings(self, principal: Principal) -> PipelineSetup:
        ensure_role(principal, ADMINS, "see the pipeline settings")
        return await self._setups.get(principal.venue_id)

    async def put_settings(self, principal: Principal, currency: str) -> PipelineSetup:
        ensure_role(principal, ADMINS, "change the pipeline settings")
        venue_id = principal.venue_id
        async for _ in save_attempts():
            setup = await self._setups.get(venue_id)
            if not setup.change_currency(currency, self._clock()):
                return setup
            count = await self._opportunities.count_with_value(venue_id)
            if count:
                raise CurrencyInUse(count)
            if await self._setups.save(setup):
                return setup
        raise SetupChangedConcurrently()
