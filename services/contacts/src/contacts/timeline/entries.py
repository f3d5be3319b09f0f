"""Which events make a contact's timeline, and how each reads there. Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gala.contracts.billing import DocumentSigned, PaymentPaid
from gala.contracts.chat import MessageSent
from gala.contracts.contacts import ContactCreated, ContactStatusChanged, ContactUpdated
from gala.contracts.pipeline import (
    OpportunityCreated,
    OpportunityEvent,
    OpportunityLost,
    OpportunityStageChanged,
    OpportunityWon,
)
from gala.events.model import Event

CLIENT_MESSAGE = "message.client"
DOCUMENT_SIGNED = "document.signed"
PAYMENT_PAID = "payment.paid"
INQUIRY = "contact.inquiry"


@dataclass(frozen=True)
class Entry:
    kind: str
    summary: str
    details: dict[str, Any]


def _opportunity(event: OpportunityEvent) -> dict[str, Any]:
    details: dict[str, Any] = {"opportunityId": event.opportunity_id, "stage": event.stage}
    if event.value is not None:
        details["value"] = str(event.value)
        details["currency"] = event.currency
    return details


def entry_for(event: Event) -> Entry | None:
    """The timeline entry an event makes, or ``None`` when it is not part of the history."""
    match event:
        case ContactCreated():
            return Entry(
                "contact.created", f"Contact created ({event.lead_source.value.lower()})", {}
            )
        case ContactStatusChanged():
            return Entry(
                "contact.status_changed",
                f"Status {event.previous_status.value} -> {event.status.value}",
                {"from": event.previous_status.value, "to": event.status.value},
            )
        case ContactUpdated():
            return Entry("contact.updated", "Details updated", {})
        case OpportunityCreated():
            return Entry(
                "opportunity.created", f"Opportunity opened: {event.name}", _opportunity(event)
            )
        case OpportunityStageChanged():
            return Entry(
                "opportunity.stage_changed",
                f"{event.name}: {event.previous_stage} -> {event.stage}",
                {**_opportunity(event), "previousStage": event.previous_stage},
            )
        case OpportunityWon():
            return Entry("opportunity.won", f"Won: {event.name}", _opportunity(event))
        case OpportunityLost():
            return Entry(
                "opportunity.lost",
                f"Lost: {event.name} ({event.reason})",
                {**_opportunity(event), "reason": event.reason},
            )
        case MessageSent():
            return Entry(
                CLIENT_MESSAGE,
                "The client wrote in the project chat",
                {"projectId": event.project_id, "messageId": event.message_id},
            )
        case DocumentSigned():
            return Entry(
                DOCUMENT_SIGNED, f"Signed: {event.name}", {"documentId": event.document_id}
            )
        case PaymentPaid():
            return Entry(
                PAYMENT_PAID,
                f"Paid {event.amount} {event.currency}",
                {
                    "paymentId": event.payment_id,
                    "amount": str(event.amount),
                    "currency": event.currency,
                },
            )
    return None


def inquiry(
    *, name: str, email: str, phone: str | None, message: str | None, lead_source: str
) -> Entry:
    """A known contact came back through the website form: what they submitted, as
    they submitted it (the contact's own details are left as they are)."""
    return Entry(
        INQUIRY,
        f"New inquiry from the website form ({lead_source.lower()})",
        {
            "name": name,
            "email": email,
            "phone": phone,
            "message": message,
            "leadSource": lead_source,
        },
    )


def occurred_at(event: Event, fallback: datetime) -> datetime:
    """When it happened, if the payload says; else the envelope's time."""
    for name in ("won_at", "lost_at", "sent_at", "signed_at", "paid_at"):
        value = getattr(event, name, None)
        if isinstance(value, datetime):
            return value
    return fallback
