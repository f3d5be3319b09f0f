"""The only module that speaks to the store about payments.

One document per installment in ``payments``, its pending events inside (the outbox).
Amounts are int64 minor units (``amountMinor``) with their ``currency``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bson import Int64
from pymongo import ASCENDING, ReturnDocument

from billing.payments.domain import CheckoutRef, CheckoutState, Payment, Receipt
from gala.aggregates import READ_FIELDS, AggregateRepository, Codec
from gala.contracts.billing import AttentionReason, PaymentKind, PaymentStatus
from gala.identity import venue_scoped
from gala.store import Document, Index, PageRequest
from gala.values import as_utc, required_utc

COLLECTION = "payments"
SORT: Sequence[tuple[str, int]] = [("dueDate", ASCENDING)]
OPEN = [PaymentStatus.PENDING.value, PaymentStatus.OVERDUE.value]


def _listing_indexes() -> list[Index]:
    """Each equality filter the listing offers, then its order (due date) and the id."""
    indexes = [Index(COLLECTION, [("venueId", ASCENDING), ("dueDate", ASCENDING), ("_id", 1)])]
    for name in ("opportunityId", "projectId", "status", "needsAttention"):
        keys = [("venueId", ASCENDING), (name, ASCENDING), ("dueDate", ASCENDING), ("_id", 1)]
        indexes.append(Index(COLLECTION, keys))
    return indexes


INDEXES: Sequence[Index] = (
    *_listing_indexes(),
    # what reminder workers claim: the earliest look-again time first
    Index(COLLECTION, [("nextReminderAt", ASCENDING)]),
)


def to_document(p: Payment) -> Document:
    return {
        "_id": p.id,
        "venueId": p.venue_id,
        "opportunityId": p.opportunity_id,
        "contactId": p.contact_id,
        "projectId": p.project_id,
        "kind": p.kind.value,
        "amountMinor": Int64(p.amount_minor),
        "currency": p.currency,
        "dueDate": p.due_date,
        "status": p.status.value,
        "paidAt": p.paid_at,
        "paymentMethod": p.payment_method,
        "externalPaymentId": p.external_payment_id,
        "reference": p.reference,
        "idempotencyKey": p.idempotency_key,
        "cancelledAt": p.cancelled_at,
        "cancelReason": p.cancel_reason,
        "checkoutSessions": [
            {
                "id": c.id,
                "amountMinor": Int64(c.amount_minor),
                "currency": c.currency,
                "openedAt": c.opened_at,
                "state": c.state.value,
            }
            for c in p.checkout_sessions
        ],
        "receipts": [
            {
                "sessionId": r.session_id,
                "amountMinor": None if r.amount_minor is None else Int64(r.amount_minor),
                "currency": r.currency,
                "receivedAt": r.received_at,
                "externalId": r.external_id,
                "method": r.method,
                "outcome": r.outcome.value if r.outcome else None,
            }
            for r in p.receipts
        ],
        "needsAttention": p.needs_attention,
        "attentionReason": p.attention_reason.value if p.attention_reason else None,
        "attentionNote": p.attention_note,
        "attentionResolvedAt": p.attention_resolved_at,
        "attentionResolvedBy": p.attention_resolved_by,
        "remindersSent": list(p.reminders_sent),
        "mailsPending": list(p.mails_pending),
        "mailAttempts": p.mail_attempts,
        "nextReminderAt": p.next_reminder_at,
        "createdAt": p.created_at,
        "updatedAt": p.updated_at,
        "version": p.version,
    }


def from_document(d: Mapping[str, Any]) -> Payment:
    return Payment(
        id=d["_id"],
        venue_id=d["venueId"],
        opportunity_id=d["opportunityId"],
        contact_id=d.get("contactId"),
        project_id=d.get("projectId"),
        kind=PaymentKind(d["kind"]),
        amount_minor=int(d["amountMinor"]),
        currency=d["currency"],
        due_date=required_utc(d["dueDate"]),
        status=PaymentStatus(d["status"]),
        paid_at=as_utc(d.get("paidAt")),
        payment_method=d.get("paymentMethod"),
        external_payment_id=d.get("externalPaymentId"),
        reference=d.get("reference"),
        idempotency_key=d.get("idempotencyKey"),
        cancelled_at=as_utc(d.get("cancelledAt")),
        cancel_reason=d.get("cancelReason"),
        checkout_sessions=[
            CheckoutRef(
                c["id"],
                int(c["amountMinor"]),
                c["currency"],
                required_utc(c["openedAt"]),
                CheckoutState(c["state"]),
            )
            for c in d.get("checkoutSessions") or []
        ],
        receipts=[
            Receipt(
                session_id=r["sessionId"],
                amount_minor=None if r.get("amountMinor") is None else int(r["amountMinor"]),
                currency=r.get("currency"),
                received_at=required_utc(r["receivedAt"]),
                external_id=r["externalId"],
                method=r["method"],
                outcome=AttentionReason(r["outcome"]) if r.get("outcome") else None,
            )
            for r in d.get("receipts") or []
        ],
        needs_attention=bool(d.get("needsAttention")),
        attention_reason=AttentionReason(d["attentionReason"])
        if d.get("attentionReason")
        else None,
        attention_note=d.get("attentionNote"),
        attention_resolved_at=as_utc(d.get("attentionResolvedAt")),
        attention_resolved_by=d.get("attentionResolvedBy"),
        reminders_sent=list(d.get("remindersSent") or []),
        mails_pending=list(d.get("mailsPending") or []),
        mail_attempts=int(d.get("mailAttempts") or 0),
        next_reminder_at=as_utc(d.get("nextReminderAt")),
        created_at=required_utc(d["createdAt"]),
        updated_at=required_utc(d["updatedAt"]),
        version=int(d["version"]),
    )


@dataclass(frozen=True)
class PaymentFilter:
    opportunity_id: str | None = None
    project_id: str | None = None
    status: PaymentStatus | None = None
    due_from: datetime | None = None
    due_before: datetime | None = None
    needs_attention: bool | None = None
    opportunity_ids: Sequence[str] | None = None
    """Only payments of these opportunities (a CLIENT's own)."""

    def query(self, venue_id: str) -> Document:
        query: Document = venue_scoped(venue_id)
        if self.opportunity_id is not None:
            query["opportunityId"] = self.opportunity_id
        if self.project_id is not None:
            query["projectId"] = self.project_id
        if self.status is not None:
            query["status"] = self.status.value
        if self.needs_attention is True:
            query["needsAttention"] = True  # through its index
        elif self.needs_attention is False:
            query["needsAttention"] = {"$ne": True}
        if self.opportunity_ids is not None:
            query.setdefault("$and", []).append(
                {"opportunityId": {"$in": list(self.opportunity_ids)}}
            )
        dates: Document = {}
        if self.due_from is not None:
            dates["$gte"] = self.due_from
        if self.due_before is not None:
            dates["$lt"] = self.due_before
        if dates:
            query["dueDate"] = dates
        return query


class PaymentRepository(AggregateRepository[Payment]):
    COLLECTION = COLLECTION
    codec = Codec(to_document, from_document)

    async def page(
        self, venue_id: str, where: PaymentFilter, limit: int, cursor: str | None
    ) -> tuple[list[Payment], str | None]:
        return await self.find_page(
            where.query(venue_id), PageRequest(sort=SORT, limit=limit, cursor=cursor)
        )

    async def explain(
        self, venue_id: str, where: PaymentFilter, limit: int, cursor: str | None
    ) -> Document:
        """The store's plan for :meth:`page` (tests prove listings read through an index)."""
        return await self.explain_page(
            where.query(venue_id), PageRequest(sort=SORT, limit=limit, cursor=cursor)
        )

    async def count_due(self, now: datetime) -> int:
        """How many open installments have a reminder time that has come."""
        return await self.collection.count_documents(
            {"nextReminderAt": {"$lte": now}, "status": {"$in": OPEN}}
        )

    async def claim_due(self, now: datetime, lease: timedelta) -> Payment | None:
        """Take the installment whose reminder time came first, for ``lease``: its look-
        again time moves past the lease (another worker takes it over then if this one
        dies), and its version moves on (a save computed before cannot undo the claim)."""
        document = await self.collection.find_one_and_update(
            {"nextReminderAt": {"$lte": now}, "status": {"$in": OPEN}},
            {"$set": {"nextReminderAt": now + lease}, "$inc": {"version": 1}},
            sort=[("nextReminderAt", ASCENDING)],
            return_document=ReturnDocument.AFTER,
        )
        if document is None:
            return None
        for name in READ_FIELDS:
            document.pop(name, None)
        return from_document(document)

    async def open_ids_of(self, venue_id: str, opportunity_id: str) -> list[str]:
        """The unpaid, uncancelled installments of an opportunity."""
        query = venue_scoped(
            venue_id,
            {"opportunityId": opportunity_id, "status": {"$in": OPEN}},
        )
        return [d["_id"] async for d in self.collection.find(query, {"_id": 1})]

    async def set_project(self, venue_id: str, opportunity_id: str, project_id: str) -> None:
        """The opportunity's project on its payments (known once projects made it)."""
        await self.collection.update_many(
            venue_scoped(venue_id, {"opportunityId": opportunity_id, "projectId": None}),
            # a new version: a save computed before this cannot put the old value back
            {"$set": {"projectId": project_id}, "$inc": {"version": 1}},
        )
