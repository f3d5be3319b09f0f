"""Online payments through Stripe Checkout: what can go wrong, and what a webhook says.

Pure: no I/O. A checkout session is opened for an unpaid installment's amount due (and
remembered with it); Stripe then tells Gala, by a signed webhook, that the session was
paid, and how much (``amount_total``, ``currency``). Only a verified webhook changes
anything; a webhook delivered twice changes nothing; money that is not exactly the
installment's amount due, or arrives after it was paid or cancelled, never pays it: it
is kept as a receipt and the installment needs attention (see payments/domain.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import Final

from gala.errors import Conflict, GalaError, ServiceUnavailable

PAID_EVENTS: Final = frozenset(
    {"checkout.session.completed", "checkout.session.async_payment_succeeded"}
)


class CheckoutError(GalaError):
    """Base of the checkout module's errors."""


class OnlinePaymentsUnavailable(CheckoutError, ServiceUnavailable):
    def __init__(self, why: str = "Online payments are not configured for Gala.") -> None:
        super().__init__(why)


class NothingToPay(CheckoutError, Conflict):
    def __init__(self, status: str) -> None:
        super().__init__(f"The payment is {status}: there is nothing to pay.", paymentStatus=status)


class InvalidSignature(CheckoutError):
    status = HTTPStatus.BAD_REQUEST
    code = "invalid-signature"
    title = "The webhook's signature is not valid"


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    url: str


@dataclass(frozen=True)
class PaidSession:
    """A Stripe event telling that a checkout session was paid."""

    session_id: str
    payment_id: str
    venue_id: str
    external_id: str
    """The payment intent (or the session, when there is none)."""
    method: str
    amount_total: int | None
    """What was paid, in minor units of ``currency`` (``None``: Stripe did not say)."""
    currency: str | None
    """Upper case (Stripe writes it in lower case)."""
