"""Use cases for payments: schedules from won opportunities, the staff's changes, what
a client sees.

ADMIN and SALES change payments; PROJECT_MANAGER reads them; a CLIENT sees only the
payments of their own projects' opportunities (any other is "not found"). Every change
is computed on a fresh read and saved only onto that version, else recomputed. Once a
change leaves checkout sessions that are no longer right (the amount changed, the
installment was paid or cancelled), they are expired at the payment provider; one the
provider could not be reached for stays marked, and is tried again with the next change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Protocol

from pymongo.errors import DuplicateKeyError

from billing.deals.domain import Deal, UnknownOpportunity
from billing.deals.repository import DealRepository
from billing.payments.domain import (
    InvalidPayment,
    Payment,
    PaymentChangedConcurrently,
    PaymentNotFound,
    PaymentPatch,
    Receipt,
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


class CheckoutSessions(Protocol):
    """The payment provider's checkout sessions (see checkout/stripe_gateway.py)."""

    async def expire_session(self, session_id: str) -> bool:
        """Expire it; ``True`` once it can no longer be paid (expired now or before, or
        completed), ``False`` when the provider could not be reached (try again)."""
        ...


class PaymentService:
    def __init__(
        self,
        payments: PaymentRepository,
        policies: PolicyRepository,
        deals: DealRepository,
        schedule: ReminderSchedule,
        clock: Clock = utc_now,
        checkouts: CheckoutSessions | None = None,
    ) -> None:
        self._payments = payments
        self._policies = policies
        self._deals = deals
        self._schedule = schedule
        """Every save plans the installment's reminders again."""
        self._clock = clock
        self._checkouts = checkouts

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

    async def resolve_attention(self, principal: Principal, payment_id: str, note: str) -> Payment:
        """A person dealt with money that did not pay the installment (ADMIN, SALES)."""
        ensure_role(principal, WRITERS, "resolve payments")
        now = self._clock()
        return await self._change(
            principal.venue_id,
            payment_id,
            lambda p: p.resolve_attention(by=principal.user_id, note=note, now=now),
        )

    # --- the payment provider ---------------------------------------------------------

    async def checkout_opened(
        self, payment: Payment, session_id: str, amount_minor: int, currency: str
    ) -> Payment:
        """Remember a session opened for the installment (expired at once if the
        installment changed meanwhile)."""
        now = self._clock()
        return await self._change(
            payment.venue_id,
            payment.id,
            lambda p: p.checkout_opened(session_id, amount_minor, currency, now),
        )

    async def received_online(self, venue_id: str, payment_id: str, receipt: Receipt) -> Payment:
        """The payment provider says a session brought money; told again, nothing changes."""
        return await self._change(venue_id, payment_id, lambda p: p.received_online(receipt))

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
        payment = await self._saved(venue_id, payment_id, change)
        if payment.sessions_to_expire and self._checkouts is not None:
            payment = await self._expire_sessions(payment, self._checkouts)
        return payment

    async def _saved(self, venue_id: str, payment_id: str, change: Change) -> Payment:
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

    async def _expire_sessions(self, payment: Payment, checkouts: CheckoutSessions) -> Payment:
        """Expire, at the provider, the sessions that are no longer right (after the change
        that made them so was saved); remember those that are done."""
        done = {s for s in payment.sessions_to_expire if await checkouts.expire_session(s)}
        if not done:
            return payment
        return await self._saved(payment.venue_id, payment.id, lambda p: p.sessions_expired(done))


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
