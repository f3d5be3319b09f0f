"""The only module that speaks to the store about billing policies: one document per
venue in ``billing_policy`` (``_id`` = venue id); a venue without one has the defaults."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from pymongo.errors import DuplicateKeyError

from billing.policy.domain import BillingPolicy
from gala.store import Index, Store
from gala.values import as_utc

COLLECTION = "billing_policy"
INDEXES: Sequence[Index] = ()


class PolicyRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def get(self, venue_id: str) -> BillingPolicy:
        d = await self._store[COLLECTION].find_one({"_id": venue_id})
        if d is None:
            return BillingPolicy(venue_id)
        return BillingPolicy(
            venue_id,
            Decimal(d["depositPercent"]),
            int(d["depositDueDaysAfterWin"]),
            int(d["balanceDueDaysBeforeEvent"]),
            int(d["version"]),
            as_utc(d.get("updatedAt")),
        )

    async def save(self, policy: BillingPolicy) -> bool:
        """Write unless someone saved since it was read (then ``False``)."""
        state = {
            "depositPercent": str(policy.deposit_percent),
            "depositDueDaysAfterWin": policy.deposit_due_days_after_win,
            "balanceDueDaysBeforeEvent": policy.balance_due_days_before_event,
            "updatedAt": policy.updated_at,
            "version": policy.version + 1,
        }
        collection = self._store[COLLECTION]
        if policy.version == 0:
            try:
                await collection.insert_one({"_id": policy.venue_id, **state})
            except DuplicateKeyError:
                return False
        else:
            result = await collection.update_one(
                {"_id": policy.venue_id, "version": policy.version}, {"$set": state}
            )
            if result.matched_count != 1:
                return False
        policy.version += 1
        return True
