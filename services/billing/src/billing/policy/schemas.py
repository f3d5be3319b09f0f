"""The billing policy API's bodies (camelCase JSON; the percentage as a decimal string)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import Field

from billing.policy.domain import DAYS_MAX, BillingPolicy
from gala.api import RequestBody, ResponseBody

Percent = Annotated[
    str,
    Field(pattern=r"^[0-9]{1,3}(\.[0-9]{1,2})?$", description="0 to 100", examples=["30"]),
]
Days = Annotated[int, Field(ge=0, le=DAYS_MAX)]


class PolicyIn(RequestBody):
    deposit_percent: Percent
    deposit_due_days_after_win: Days
    balance_due_days_before_event: Days


class PolicyOut(ResponseBody):
    deposit_percent: Decimal
    deposit_due_days_after_win: int
    balance_due_days_before_event: int
    updated_at: datetime | None

    @classmethod
    def of(cls, policy: BillingPolicy) -> PolicyOut:
        return cls(
            deposit_percent=policy.deposit_percent,
            deposit_due_days_after_win=policy.deposit_due_days_after_win,
            balance_due_days_before_event=policy.balance_due_days_before_event,
            updated_at=policy.updated_at,
        )
