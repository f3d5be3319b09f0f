"""Events the billing service publishes: payments on ``gala.billing.payment`` and
documents on ``gala.billing.document``. Money is exact (a decimal, a JSON string)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from gala.events.model import Event

PAYMENT_TOPIC = "gala.billing.payment"
DOCUMENT_TOPIC = "gala.billing.document"


class PaymentPaid(Event, type="gala.payment.paid.v1", topic=PAYMENT_TOPIC):
    """An installment was paid (online or recorded offline)."""

    payment_id: str
    venue_id: str
    opportunity_id: str
    contact_id: str | None = None
    amount: Decimal
    currency: str
    paid_at: datetime
    payment_method: str | None = None


class DocumentSigned(Event, type="gala.document.signed.v1", topic=DOCUMENT_TOPIC):
    """A client signed a document (a contract, typically)."""

    document_id: str
    venue_id: str
    name: str
    opportunity_id: str | None = None
    project_id: str | None = None
    contact_id: str | None = None
    signed_at: datetime
