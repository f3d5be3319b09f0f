"""HTTP entry points for online payments: open a checkout, receive Stripe's webhooks."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request

from billing.checkout.domain import InvalidSignature, NothingToPay, OnlinePaymentsUnavailable
from billing.checkout.schemas import CheckoutOut, WebhookOut
from billing.checkout.service import CheckoutService
from billing.checkout.stripe_gateway import StripeGateway, gateway_of
from billing.deals.repository import DealRepository
from billing.payments.api import Payments
from billing.payments.domain import PaymentChangedConcurrently, PaymentNotFound
from billing.settings import billing_settings
from gala.api import problems, read_body
from gala.app import RuntimeDep, StoreDep
from gala.errors import Forbidden, PayloadTooLarge
from gala.identity import CurrentPrincipal


async def stripe_gateway(runtime: RuntimeDep) -> StripeGateway:
    return gateway_of(runtime)


async def checkout_service(
    payments: Payments, store: StoreDep, gateway: Annotated[StripeGateway, Depends(stripe_gateway)]
) -> CheckoutService:
    return CheckoutService(payments, DealRepository(store), gateway)


Checkouts = Annotated[CheckoutService, Depends(checkout_service)]
router = APIRouter(tags=["payments"])


@router.post(
    "/api/v1/payments/{payment_id}/checkout",
    responses=problems(
        Forbidden,
        PaymentNotFound,
        NothingToPay,
        PaymentChangedConcurrently,
        OnlinePaymentsUnavailable,
    ),
)
async def open_checkout(
    principal: CurrentPrincipal, checkouts: Checkouts, payment_id: str
) -> CheckoutOut:
    """A Stripe Checkout session for the installment's amount (its CLIENT, ADMIN, SALES):
    send the payer to ``url``. The installment turns PAID when Stripe's webhook says that
    exactly its amount was paid; a session opened before the amount changed (or the
    installment was paid or cancelled) is expired at Stripe."""
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
    own check; a bad or stale signature is 400 and changes nothing). A paid session is
    kept as a receipt on its installment, once: exactly the amount due (in its currency)
    pays it; anything else, or money for a paid or cancelled installment, never does and
    marks the installment as needing attention (``GET /api/v1/payments?attention=true``)."""
    payload = await read_body(request, billing_settings(runtime.settings).stripe_webhook_max_bytes)
    await checkouts.webhook(payload, signature)
    return WebhookOut()
