"""Use cases for a venue's billing policy."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from billing.policy.domain import BillingPolicy, PolicyChangedConcurrently
from billing.policy.repository import PolicyRepository
from billing.roles import ADMINS, READERS
from gala.concurrency import save_attempts
from gala.identity import Principal, ensure_role
from gala.store import utc_now

Clock = Callable[[], datetime]


class PolicyService:
    def __init__(self, policies: PolicyRepository, clock: Clock = utc_now) -> None:
        self._policies = policies
        self._clock = clock

    async def get(self, principal: Principal) -> BillingPolicy:
        ensure_role(principal, READERS, "see the billing policy")
        return await self._policies.get(principal.venue_id)

    async def put(
        self,
        principal: Principal,
        *,
        deposit_percent: Decimal,
        deposit_due_days_after_win: int,
        balance_due_days_before_event: int,
    ) -> BillingPolicy:
        ensure_role(principal, ADMINS, "change the billing policy")
        async for _ in save_attempts():
            policy = await self._policies.get(principal.venue_id)
            policy.change(
                deposit_percent=deposit_percent,
                deposit_due_days_after_win=deposit_due_days_after_win,
                balance_due_days_before_event=balance_due_days_before_event,
                now=self._clock(),
            )
            if await self._policies.save(policy):
                return policy
        raise PolicyChangedConcurrently()
