"""Use cases for payments: schedules from won opportunities, the staff's changes, what
a client sees.

ADMIN and SALES change payments; PROJECT_MANAGER reads them; a CLIENT sees only the
payments of their own projects' opportunities (any other is "not found"). Every change
is computed on a fresh read and saved only onto that version, else recomputed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from pymongo.errors import DuplicateKeyError

from billing.deals.domain import Deal, UnknownOpportunity
from billing.deals.repository import DealRepository
from billing.payments.domain import (
    InvalidPayment,
    Payment,
    PaymentChangedConcurrently,
    PaymentNotFound,
    PaymentPatch,
    WonDeal,
    check_method,
)
from billing.payments.repository import PaymentFilter, PaymentRepository
from billing.policy.repository import PolicyRepository
from billing.reminders.domain import ReminderSchedule
from billing.roles import READERS, WRITERS
from gala.concurrency import save_attempts
from gala.contracts.pipeline import OpportunityOutcome
from gala.identity import Principal, Role, ensure_role
from gala.money import InvalidMoney, to_minor
from gala.store import utc_now

Clock = Callable[[], datetime]
Change = Callable[[Payment], bool]
KEY_MAX = 200


class PaymentService:
    def __init__(
        self,
        payments: PaymentRepository,
        policies: PolicyRepository,
        deals: DealRepository,
        schedule: ReminderSchedule,
        clock: Clock = utc_now,
    ) -> None:
        self._payments = payments
        self._policies = policies
        self._deals = deals
        self._schedule = schedule
        """Every save plans the installment's reminders again."""
        self._clock = clock

    # --- staff and clients ------------------------------------------------------------

    async def page(
        self, principal: Principal, where: PaymentFilter, limit: int, cursor: str | None
    ) -> tuple[list[Payment], str | None]:
        if principal.role is Role.CLIENT:
            mine = await self._deals.opportunities_of_client(principal.venue_id, principal.user_id)
            where = replace(where, opportunity_ids=mine)
        else:
            ensure_role(principal, READERS, "see payments")
        return await self._payments.page(principal.venue_id, where, limit, cursor)

    async def get(self, principal: Principal, payment_id: str) -> Payment:
        payment = await self._payments.get(principal.venue_id, payment_id)
        if payment is None:
            raise PaymentNotFound()
        if principal.role is Role.CLIENT:
            mine = await self._deals.opportunities_of_client(principal.venue_id, principal.user_id)
            if payment.opportunity_id not in mine:
                raise PaymentNotFound()
        else:
            ensure_role(principal, READERS, "see payments")
        return payment

    async def add(
        self, principal: Principal, opportunity_id: str, amount: str, due_date: datetime
    ) -> Payment:
        """An extra installment of a won opportunity."""
        ensure_role(principal, WRITERS, "add payments")
        deal = await self._deals.get(principal.venue_id, opportunity_id)
        if deal is None or deal.outcome is not OpportunityOutcome.WON or deal.currency is None:
            raise UnknownOpportunity(opportunity_id)
        payment = Payment.extra(
            _won(deal, self._clock()), _minor(amount, deal.currency), due_date, self._clock()
        )
        payment.replan(self._schedule, self._clock())
        await self._payments.insert(payment)
        return payment

    async def change(self, principal: Principal, payment_id: str, patch: PaymentPatch) -> Payment:
        ensure_role(principal, WRITERS, "change payments")
        now = self._clock()
        return await self._change(principal.venue_id, payment_id, lambda p: p.change(patch, now))

    async def record(
        self,
        principal: Principal,
        payment_id: str,
        *,
        method: str,
        reference: str | None,
        idempotency_key: str | None,
    ) -> Payment:
        """Record an offline payment; the same ``Idempotency-Key`` again changes nothing."""
        ensure_role(principal, WRITERS, "record payments")
        if not idempotency_key or len(idempotency_key) > KEY_MAX:
            raise InvalidPayment(
                f"Recording a payment needs an Idempotency-Key header (1 to {KEY_MAX} characters)."
            )
        method = check_method(method)
        now = self._clock()
        return await self._change(
            principal.venue_id,
            payment_id,
            lambda p: p.record(method=method, reference=reference, key=idempotency_key, now=now),
        )

    async def paid_online(
        self, venue_id: str, payment_id: str, *, method: str, external_id: str
    ) -> Payment:
        """The payment provider says it was paid; said again, it changes nothing."""
        now = self._clock()
        return await self._change(
            venue_id,
            payment_id,
            lambda p: p.paid_online(method=method, external_id=external_id, at=now),
        )

    # --- from events ------------------------------------------------------------------

    async def schedule(self, deal: WonDeal) -> int:
        """The won opportunity's installments; how many were new (0 when scheduled)."""
        policy = await self._policies.get(deal.venue_id)
        made = 0
        for payment in Payment.schedule(deal, policy, self._clock()):
            payment.replan(self._schedule, self._clock())
            try:
                await self._payments.insert(payment)
            except DuplicateKeyError:
                continue  # scheduled by an earlier delivery
            made += 1
        return made

    async def cancel_open(self, venue_id: str, opportunity_id: str, reason: str) -> None:
        """The opportunity was lost: its unpaid installments are cancelled."""
        now = self._clock()
        for payment_id in await self._payments.open_ids_of(venue_id, opportunity_id):
            await self._change(venue_id, payment_id, lambda p: p.cancel(reason, now))

    async def _change(self, venue_id: str, payment_id: str, change: Change) -> Payment:
        async for _ in save_attempts():
            payment = await self._payments.get(venue_id, payment_id)
            if payment is None:
                raise PaymentNotFound()
            if not change(payment):
                return payment
            payment.replan(self._schedule, self._clock())
            if await self._payments.save(payment):
                return payment
        raise PaymentChangedConcurrently()


def _won(deal: Deal, now: datetime) -> WonDeal:
    assert deal.currency is not None
    return WonDeal(
        venue_id=deal.venue_id,
        opportunity_id=deal.opportunity_id,
        contact_id=deal.contact_id,
        value_minor=None,
        currency=deal.currency,
        event_date=deal.event_date,
        won_at=now,
        project_id=deal.project_id,
    )


def _minor(amount: str, currency: str) -> int:
    try:
        return to_minor(amount, currency)
    except InvalidMoney as exc:
        raise InvalidPayment(exc.detail) from exc
