"""Use cases for online payments: open a checkout for an installment, take Stripe's word
that it was paid.

A CLIENT opens a checkout for an installment of their own project; ADMIN and SALES for
any of the venue's. Stripe's webhook needs no login: its signature is its credential.
"""

from __future__ import annotations

import logging

from billing.checkout.domain import CheckoutSession, NothingToPay
from billing.checkout.stripe_gateway import StripeGateway
from billing.deals.repository import DealRepository
from billing.payments.domain import InvalidPaymentTransition, PaymentNotFound
from billing.payments.service import PaymentService
from billing.roles import WRITERS
from gala.identity import Principal, Role, ensure_role

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
        return await self._gateway.open_checkout(payment, description)

    async def webhook(self, payload: bytes, signature: str | None) -> None:
        """Apply a verified Stripe event (refused unverified; other events are ignored)."""
        paid = self._gateway.paid_session(payload, signature)
        if paid is None:
            return
        try:
            await self._payments.paid_online(
                paid.venue_id, paid.payment_id, method=paid.method, external_id=paid.external_id
            )
        except PaymentNotFound:
            log.error(
                "stripe: paid session for an unknown payment", extra={"session": paid.session_id}
            )
        except InvalidPaymentTransition as exc:
            # money arrived for a cancelled installment: a person must refund or reinstate
            log.error(
                "stripe: paid session for a payment that cannot be paid",
                extra={"paymentId": paid.payment_id, "session": paid.session_id, "why": exc.detail},
            )
