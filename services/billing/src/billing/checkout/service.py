"""Use cases for online payments: open a checkout for an installment, take Stripe's word
that it was paid.

A CLIENT opens a checkout for an installment of their own project; ADMIN and SALES for
any of the venue's. Each session opened is remembered with the installment (so that it
can be expired when the installment changes). Stripe's webhook needs no login: its
signature is its credential; what it says was paid is checked against the installment.
"""

from __future__ import annotations

import logging

from billing.checkout.domain import CheckoutSession, NothingToPay
from billing.checkout.stripe_gateway import StripeGateway
from billing.deals.repository import DealRepository
from billing.payments.domain import (
    CheckoutState,
    PaymentChangedConcurrently,
    PaymentNotFound,
    Receipt,
)
from billing.payments.service import PaymentService
from billing.roles import WRITERS
from gala.identity import Principal, Role, ensure_role
from gala.store import utc_now

log = logging.getLogger(__name__)


class CheckoutService:
    def __init__(
        self, payments: PaymentService, deals: DealRepository, gateway: StripeGateway
    ) -> None:
        self._payments = payments
        self._deals = deals
        self._gateway = gateway

    async def open(self, principal: Principal, payment_id: str) -> CheckoutSession:
        if principal.role is not Role.CLIENT:
            ensure_role(principal, WRITERS, "take payments")
        payment = await self._payments.get(principal, payment_id)
        if not payment.open:
            raise NothingToPay(payment.status.value)
        deal = await self._deals.get(payment.venue_id, payment.opportunity_id)
        event = deal.name if deal and deal.name else "Your event"
        description = f"{event}: {payment.kind.value.lower()}"
        session = await self._gateway.open_checkout(payment, description)
        current = await self._payments.checkout_opened(
            payment, session.id, payment.amount_minor, payment.currency
        )
        if current.checkout_state(session.id) is not CheckoutState.OPEN:
            # the installment changed meanwhile: that session was expired at once
            if not current.open:
                raise NothingToPay(current.status.value)
            raise PaymentChangedConcurrently()
        return session

    async def webhook(self, payload: bytes, signature: str | None) -> None:
        """Apply a verified Stripe event (refused unverified; other events are ignored)."""
        paid = self._gateway.paid_session(payload, signature)
        if paid is None:
            return
        receipt = Receipt(
            session_id=paid.session_id,
            amount_minor=paid.amount_total,
            currency=paid.currency,
            received_at=utc_now(),
            external_id=paid.external_id,
            method=paid.method,
        )
        try:
            payment = await self._payments.received_online(paid.venue_id, paid.payment_id, receipt)
        except PaymentNotFound:
            log.error(
                "stripe: paid session for an unknown payment", extra={"session": paid.session_id}
            )
            return
        if payment.needs_attention:
            log.warning(
                "stripe: money received that does not pay the installment",
                extra={
                    "paymentId": payment.id,
                    "session": paid.session_id,
                    "reason": payment.attention_reason,
                },
            )
