"""Events the billing service publishes: payments on ``gala.billing.payment`` and
documents on ``gala.billing.document``. Money is exact (a decimal, a JSON string).

Every payment event carries the payment as it is after the change (subject: the
payment id): an installment of a won opportunity's schedule (``DEPOSIT``, ``BALANCE``)
or one added by hand (``EXTRA``).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from gala.events.model import Event

PAYMENT_TOPIC = "gala.billing.payment"
DOCUMENT_TOPIC = "gala.billing.document"


class PaymentStatus(StrEnum):
    PENDING = "PENDING"
    PAID = "PAID"
    OVERDUE = "OVERDUE"
    CANCELLED = "CANCELLED"


class PaymentKind(StrEnum):
    DEPOSIT = "DEPOSIT"
    BALANCE = "BALANCE"
    EXTRA = "EXTRA"


class PaymentEvent(Event):
    """What every payment event carries."""

    payment_id: str
    venue_id: str
    opportunity_id: str
    contact_id: str | None = None
    amount: Decimal
    currency: str
    # Added with payment schedules (optional: payment.paid.v1 was published without them).
    project_id: str | None = None
    kind: PaymentKind | None = None
    status: PaymentStatus | None = None
    due_date: datetime | None = None
    # Added with payment checks (optional: published before without it).
    needs_attention: bool | None = None
    """Money received online did not pay it as it stands: a person must act."""


class PaymentScheduled(PaymentEvent, type="gala.payment.scheduled.v1", topic=PAYMENT_TOPIC):
    """An installment was scheduled (from a won opportunity, or added by hand)."""


class PaymentUpdated(PaymentEvent, type="gala.payment.updated.v1", topic=PAYMENT_TOPIC):
    """A pending installment's amount or due date changed."""


class PaymentDue(PaymentEvent, type="gala.payment.due.v1", topic=PAYMENT_TOPIC):
    """A reminder: the installment falls due in ``days_before`` days."""

    days_before: int


class PaymentOverdue(PaymentEvent, type="gala.payment.overdue.v1", topic=PAYMENT_TOPIC):
    """The installment is past due and unpaid.

    ``days_overdue`` is 0 when it just became so; later reminders repeat it with more
    days."""

    days_overdue: int


class PaymentPaid(PaymentEvent, type="gala.payment.paid.v1", topic=PAYMENT_TOPIC):
    """An installment was paid (online or recorded offline)."""

    paid_at: datetime
    payment_method: str | None = None
    external_payment_id: str | None = None


class PaymentCancelled(PaymentEvent, type="gala.payment.cancelled.v1", topic=PAYMENT_TOPIC):
    """An unpaid installment was cancelled (e.g. the opportunity was lost)."""

    cancelled_at: datetime
    reason: str | None = None


class AttentionReason(StrEnum):
    """Why money received online did not pay the installment (a person must act)."""

    UNDERPAID = "UNDERPAID"
    """Less than the installment's amount."""
    OVERPAID = "OVERPAID"
    """More than the installment's amount (e.g. a checkout opened before it changed)."""
    CURRENCY_MISMATCH = "CURRENCY_MISMATCH"
    AMOUNT_UNKNOWN = "AMOUNT_UNKNOWN"
    """The provider did not say how much was paid."""
    ALREADY_PAID = "ALREADY_PAID"
    """A second payment for a paid installment (the payer was charged twice)."""
    CANCELLED = "CANCELLED"
    """Money for a cancelled installment."""


class PaymentNeedsAttention(
    PaymentEvent, type="gala.payment.needs_attention.v1", topic=PAYMENT_TOPIC
):
    """Money arrived online that does not pay the installment as it stands (``reason``).

    It was recorded as received, the installment was not marked paid (its ``status`` is
    unchanged), and a person must act (refund, or settle the difference)."""

    reason: AttentionReason
    received_at: datetime
    received_amount: Decimal | None = None
    """In ``received_currency`` (unknown when the provider did not say)."""
    received_currency: str | None = None
    checkout_session_id: str | None = None
    external_payment_id: str | None = None


class PaymentAttentionResolved(
    PaymentEvent, type="gala.payment.attention_resolved.v1", topic=PAYMENT_TOPIC
):
    """A person dealt with what needed attention (``note``: what they did)."""

    resolved_at: datetime
    resolved_by: str | None = None
    note: str | None = None


PAYMENT_EVENTS: tuple[type[PaymentEvent], ...] = (
    PaymentScheduled,
    PaymentUpdated,
    PaymentDue,
    PaymentOverdue,
    PaymentPaid,
    PaymentCancelled,
    PaymentNeedsAttention,
    PaymentAttentionResolved,
)


class DocumentEvent(Event):
    """What every document event carries (subject: the document id)."""

    document_id: str
    venue_id: str
    name: str
    opportunity_id: str | None = None
    project_id: str | None = None
    contact_id: str | None = None
    # Added with uploads (optional: document.signed.v1 was published without them).
    content_type: str | None = None
    size: int | None = None
    sha256: str | None = None
    """The SHA-256 (hex) of the file's exact bytes."""


class DocumentCreated(DocumentEvent, type="gala.document.created.v1", topic=DOCUMENT_TOPIC):
    """A file was uploaded (a contract to sign, a floor plan, an invoice...)."""


class DocumentReplaced(DocumentEvent, type="gala.document.replaced.v1", topic=DOCUMENT_TOPIC):
    """An unsigned document's file was replaced by another one."""


class DocumentSigned(DocumentEvent, type="gala.document.signed.v1", topic=DOCUMENT_TOPIC):
    """A client signed a document (a contract, typically): ``sha256`` is the exact file."""

    signed_at: datetime
    signer_id: str | None = None
    signer_name: str | None = None


DOCUMENT_EVENTS: tuple[type[DocumentEvent], ...] = (
    DocumentCreated,
    DocumentReplaced,
    DocumentSigned,
)
