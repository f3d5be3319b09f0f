"""The checkout API's bodies."""

from __future__ import annotations

from gala.api import ResponseBody


class CheckoutOut(ResponseBody):
    session_id: str
    url: str
    """Where to send the payer (Stripe's hosted payment page)."""


class WebhookOut(ResponseBody):
    received: bool = True
