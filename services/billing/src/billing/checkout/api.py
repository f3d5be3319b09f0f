"""HTTP entry points for online payments: open a checkout, receive Stripe's webhooks."""

from __future__ import annotations

from typing import Annotated
from weakref import WeakKeyDictionary

from fastapi import APIRouter, Depends, Header, Request

from billing.checkout.domain import InvalidSignature, NothingToPay, OnlinePaymentsUnavailable
from billing.checkout.schemas import CheckoutOut, WebhookOut
from billing.checkout.service import CheckoutService
from billing.checkout.stripe_gateway import StripeGateway
from billing.deals.repository import DealRepository
from billing.payments.api import Payments
from billing.payments.domain import PaymentNotFound
from billing.settings import billing_settings
from gala.api import problems, read_body
from gala.app import Runtime, RuntimeDep, StoreDep
from gala.errors import Forbidden, PayloadTooLarge
from gala.identity import CurrentPrincipal

_GATEWAYS: WeakKeyDictionary[Runtime, StripeGateway] = WeakKeyDictionary()


def stripe_gateway(runtime: RuntimeDep) -> StripeGateway:
    """One Stripe client (and its connection pool) per running service."""
    gateway = _GATEWAYS.get(runtime)
    if gateway is None:
        gateway = _GATEWAYS[runtime] = StripeGateway(billing_settings(runtime.settings))
    return gateway


def checkout_service(
    payments: Payments, store: StoreDep, gateway: Annotated[StripeGateway, Depends(stripe_gateway)]
) -> CheckoutService:
    return CheckoutService(payments, DealRepository(store), gateway)


Checkouts = Annotated[CheckoutService, Depends(checkout_service)]
router = APIRouter(tags=["payments"])


@router.post(
    "/api/v1/payments/{payment_id}/checkout",
    responses=problems(Forbidden, PaymentNotFound, NothingToPay, OnlinePaymentsUnavailable),
)
async def open_checkout(
    principal: CurrentPrincipal, checkouts: Checkouts, payment_id: str
) -> CheckoutOut:
    """A Stripe Checkout session for the installment's amount (its CLIENT, ADMIN, SALES):
    send the payer to ``url``. The installment turns PAID when Stripe's webhook says so."""
    session = await checkouts.open(principal, payment_id)
    return CheckoutOut(session_id=session.id, url=session.url)


@router.post(
    "/api/v1/billing/stripe/webhook",
    responses=problems(InvalidSignature, PayloadTooLarge, OnlinePaymentsUnavailable),
)
async def stripe_webhook(
    request: Request,
    checkouts: Checkouts,
    runtime: RuntimeDep,
    signature: Annotated[str | None, Header(alias="Stripe-Signature")] = None,
) -> WebhookOut:
    """Stripe's events (public: verified by their ``Stripe-Signature`` with the library's
    own check; a bad or stale signature is 400 and changes nothing)."""
    payload = await read_body(request, billing_settings(runtime.settings).stripe_webhook_max_bytes)
    await checkouts.webhook(payload, signature)
    return WebhookOut()
