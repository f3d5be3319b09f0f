"""A venue's billing policy: how a won opportunity's value is scheduled.

Pure: no I/O. The default: a deposit of 30 % due 7 days after winning, the balance due
14 days before the event. A deposit of 0 % schedules the balance alone; 100 % the
deposit alone. Percentages are exact decimals with at most two decimals.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Final

from gala.errors import Conflict, GalaError, InvalidInput

DAYS_MAX: Final = 730


class PolicyError(GalaError):
    """Base of the policy module's errors."""


class InvalidPolicy(PolicyError, InvalidInput):
    pass


class PolicyChangedConcurrently(PolicyError, Conflict):
    def __init__(self) -> None:
        super().__init__("The billing policy kept changing meanwhile; try again.")


def _plain(value: Decimal) -> Decimal:
    """Without trailing zeros, never in exponent notation ("50", "12.5")."""
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value.normalize()


@dataclass
class BillingPolicy:
    venue_id: str
    deposit_percent: Decimal = Decimal(30)
    deposit_due_days_after_win: int = 7
    balance_due_days_before_event: int = 14
    version: int = 0
    """0: never stored (the defaults)."""
    updated_at: datetime | None = None

    def change(
        self,
        *,
        deposit_percent: Decimal,
        deposit_due_days_after_win: int,
        balance_due_days_before_event: int,
        now: datetime,
    ) -> None:
        if not Decimal(0) <= deposit_percent <= Decimal(100):
            raise InvalidPolicy("depositPercent is from 0 to 100.")
        if deposit_percent != deposit_percent.quantize(Decimal("0.01")):
            raise InvalidPolicy("depositPercent has at most two decimals.")
        for name, days in (
            ("depositDueDaysAfterWin", deposit_due_days_after_win),
            ("balanceDueDaysBeforeEvent", balance_due_days_before_event),
        ):
            if not 0 <= days <= DAYS_MAX:
                raise InvalidPolicy(f"{name} is from 0 to {DAYS_MAX}.")
        self.deposit_percent = _plain(deposit_percent)
        self.deposit_due_days_after_win = deposit_due_days_after_win
        self.balance_due_days_before_event = balance_due_days_before_event
        self.updated_at = now
