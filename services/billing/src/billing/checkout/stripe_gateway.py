"""The only module that speaks to Stripe (through the official ``stripe`` library)."""

from __future__ import annotations

import logging
from typing import Any
from weakref import WeakKeyDictionary

import stripe

from billing.checkout.domain import (
    PAID_EVENTS,
    CheckoutSession,
    InvalidSignature,
    OnlinePaymentsUnavailable,
    PaidSession,
)
from billing.payments.domain import Payment
from billing.settings import BillingSettings, billing_settings
from gala.app import Runtime

log = logging.getLogger(__name__)


class StripeGateway:
    def __init__(self, settings: BillingSettings) -> None:
        self._settings = settings
        key = settings.stripe_api_key
        self._client: stripe.StripeClient | None = None
        self._http: stripe.HTTPXClient | None = None
        if key is not None:
            base = {"api": settings.stripe_api_base} if settings.stripe_api_base else None
            self._http = stripe.HTTPXClient()
            self._client = stripe.StripeClient(
                key.get_secret_value(),
                base_addresses=base,  # type: ignore[arg-type]
                http_client=self._http,
                max_network_retries=2,
            )

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close_async()  # type: ignore[no-untyped-call]

    async def open_checkout(self, payment: Payment, description: str) -> CheckoutSession:
        """A Checkout session for the installment's amount; answers where to send the payer."""
        if self._client is None:
            raise OnlinePaymentsUnavailable()
        s = self._settings
        params: dict[str, Any] = {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": payment.currency.lower(),
                        "unit_amount": payment.amount_minor,
                        "product_data": {"name": description},
                    },
                }
            ],
            "client_reference_id": payment.id,
            "metadata": {"paymentId": payment.id, "venueId": payment.venue_id},
            "payment_intent_data": {
                "metadata": {"paymentId": payment.id, "venueId": payment.venue_id}
            },
            "success_url": s.checkout_success_url.format(payment_id=payment.id),
            "cancel_url": s.checkout_cancel_url.format(payment_id=payment.id),
        }
        try:
            session = await self._client.v1.checkout.sessions.create_async(
                params,  # type: ignore[arg-type]
                {"idempotency_key": f"checkout-{payment.id}-{payment.version}"},
            )
        except stripe.StripeError as exc:
            log.warning(
                "stripe checkout failed", extra={"paymentId": payment.id, "error": str(exc)}
            )
            raise OnlinePaymentsUnavailable(
                "The payment provider did not answer; try again."
            ) from exc
        return CheckoutSession(session.id, str(session.url))

    async def expire_session(self, session_id: str) -> bool:
        """Expire a checkout session (it can no longer be paid); ``True`` once it cannot
        be paid (also when Stripe says it is not open: expired before, or completed, which
        its webhook tells), ``False`` when Stripe could not be reached (try again)."""
        if self._client is None:
            return False
        try:
            await self._client.v1.checkout.sessions.expire_async(
                session_id, options={"idempotency_key": f"expire-{session_id}"}
            )
        except stripe.InvalidRequestError as exc:
            log.info(
                "stripe: session not open, not expired",
                extra={"session": session_id, "error": str(exc)},
            )
        except stripe.StripeError as exc:
            log.warning(
                "stripe: session not expired; will retry",
                extra={"session": session_id, "error": str(exc)},
            )
            return False
        return True

    def paid_session(self, payload: bytes, signature: str | None) -> PaidSession | None:
        """The paid session a verified webhook tells of; ``None`` for any other event.

        A missing, wrong or stale signature (older than the tolerance) is refused."""
        secret = self._settings.stripe_webhook_secret
        if secret is None:
            raise OnlinePaymentsUnavailable("Stripe webhooks are not configured.")
        if not signature:
            raise InvalidSignature("The Stripe-Signature header is missing.")
        try:
            event = stripe.Webhook.construct_event(
                payload,
                signature,
                secret.get_secret_value(),
                tolerance=self._settings.stripe_webhook_tolerance_seconds,
            )
        except stripe.SignatureVerificationError as exc:
            raise InvalidSignature(str(exc)) from exc
        except ValueError as exc:
            raise InvalidSignature("The payload is not a Stripe event.") from exc
        if event.type not in PAID_EVENTS:
            return None
        session: dict[str, Any] = event.data.object.to_dict()
        if session.get("payment_status") != "paid":
            return None  # e.g. completed, but a delayed method: async_payment_succeeded follows
        metadata = session.get("metadata") or {}
        payment_id = metadata.get("paymentId") or session.get("client_reference_id")
        venue_id = metadata.get("venueId")
        if not payment_id or not venue_id:
            log.warning(
                "stripe webhook without a Gala payment", extra={"session": session.get("id")}
            )
            return None
        methods = session.get("payment_method_types") or ["card"]
        amount, currency = session.get("amount_total"), session.get("currency")
        return PaidSession(
            session_id=str(session["id"]),
            payment_id=str(payment_id),
            venue_id=str(venue_id),
            external_id=str(session.get("payment_intent") or session["id"]),
            method=str(methods[0]),
            amount_total=amount if isinstance(amount, int) and amount >= 0 else None,
            currency=str(currency).upper() if currency else None,
        )


_GATEWAYS: WeakKeyDictionary[Runtime, StripeGateway] = WeakKeyDictionary()


def gateway_of(runtime: Runtime) -> StripeGateway:
    """One Stripe client (and its connection pool) per running service."""
    gateway = _GATEWAYS.get(runtime)
    if gateway is None:
        gateway = _GATEWAYS[runtime] = StripeGateway(billing_settings(runtime.settings))
    return gateway
