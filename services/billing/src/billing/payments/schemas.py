"""The payments API's bodies (camelCase JSON, money as decimal strings)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import Field

from billing.payments.domain import METHOD_MAX, NOTE_MAX, REFERENCE_MAX, Payment, Receipt
from gala.api import RequestBody, ResponseBody
from gala.contracts.billing import AttentionReason, PaymentKind, PaymentStatus

Money = Annotated[
    str,
    Field(
        pattern=r"^[0-9]{1,18}(\.[0-9]{1,18})?$",
        description='A decimal string in the opportunity\'s currency, e.g. "1250.00"',
        examples=["1250.00"],
    ),
]
Id = Annotated[str, Field(min_length=1, max_length=200)]
Method = Annotated[str, Field(min_length=1, max_length=METHOD_MAX, examples=["bank transfer"])]


class CreatePaymentIn(RequestBody):
    """An extra installment of a won opportunity."""

    opportunity_id: Id
    amount: Money
    due_date: datetime


class UpdatePaymentIn(RequestBody):
    """Only the fields sent change. ``status`` follows PENDING -> PAID, PENDING -> OVERDUE
    -> PAID, PENDING/OVERDUE -> CANCELLED; the amount and due date change while unpaid."""

    amount: Money | None = None
    due_date: datetime | None = None
    status: PaymentStatus | None = None
    payment_method: Method | None = None


class RecordPaymentIn(RequestBody):
    """A payment received outside Gala (send an ``Idempotency-Key`` header)."""

    payment_method: Method
    reference: Annotated[str | None, Field(max_length=REFERENCE_MAX)] = None


class ResolveAttentionIn(RequestBody):
    """What was done about money that did not pay the installment."""

    note: Annotated[
        str, Field(min_length=1, max_length=NOTE_MAX, examples=["Refunded the second payment"])
    ]


class ReceiptOut(ResponseBody):
    """Money received online for the installment (one per checkout session)."""

    session_id: str
    amount: Decimal | None
    """In ``currency``; ``null`` when the provider did not say."""
    currency: str | None
    received_at: datetime
    external_payment_id: str
    outcome: AttentionReason | None
    """Why it did not pay the installment; ``null``: it did."""

    @classmethod
    def of(cls, r: Receipt) -> ReceiptOut:
        return cls(
            session_id=r.session_id,
            amount=r.amount,
            currency=r.currency,
            received_at=r.received_at,
            external_payment_id=r.external_id,
            outcome=r.outcome,
        )


class PaymentOut(ResponseBody):
    id: str
    venue_id: str
    opportunity_id: str
    project_id: str | None
    contact_id: str | None
    kind: PaymentKind
    amount: Decimal
    currency: str
    due_date: datetime
    status: PaymentStatus
    paid_at: datetime | None
    payment_method: str | None
    external_payment_id: str | None
    reference: str | None
    cancelled_at: datetime | None
    needs_attention: bool
    """Money received online did not pay it as it stands: a person must act."""
    attention_reason: AttentionReason | None
    receipts: list[ReceiptOut]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, p: Payment) -> PaymentOut:
        return cls(
            id=p.id,
            venue_id=p.venue_id,
            opportunity_id=p.opportunity_id,
            project_id=p.project_id,
            contact_id=p.contact_id,
            kind=p.kind,
            amount=p.amount,
            currency=p.currency,
            due_date=p.due_date,
            status=p.status,
            paid_at=p.paid_at,
            payment_method=p.payment_method,
            external_payment_id=p.external_payment_id,
            reference=p.reference,
            cancelled_at=p.cancelled_at,
            needs_attention=p.needs_attention,
            attention_reason=p.attention_reason,
            receipts=[ReceiptOut.of(r) for r in p.receipts],
            created_at=p.created_at,
            updated_at=p.updated_at,
        )
