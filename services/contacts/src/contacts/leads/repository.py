"""The only module that speaks to the store about contacts.

One document per contact in ``contacts``, its pending events inside (the outbox). The
email's uniqueness within a venue is a unique index on ``emailKey`` (an erased contact's
key becomes ``erased:<id>`` so the address can be used again). A save applies only to
the version it was computed from, so concurrent changes never lose each other.
Custom fields and social profiles are stored as JSON text: kept exactly as given, with
keys the store would refuse (``.``, a leading ``$``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.errors import BulkWriteError, DuplicateKeyError

from contacts.leads.domain import Contact, TrackedOpportunity
from gala.aggregates import READ_FIELDS, AggregateRepository, Codec
from gala.contracts.contacts import ContactStatus, HeatReason, LeadSource
from gala.contracts.pipeline import OpportunityOutcome
from gala.identity import venue_scoped
from gala.store import Document, Index, PageRequest, duplicate_key_errors
from gala.values import as_utc

COLLECTION = "contacts"
IMPORT_MARK = "importMark"
"""What the import job's batch that last wrote a contact did to it (see contacts.imports)."""

SORTS: Mapping[str, Sequence[tuple[str, int]]] = {
    "-leadHeat": [("leadHeat", DESCENDING)],
    "leadHeat": [("leadHeat", ASCENDING)],
    "-createdAt": [("createdAt", DESCENDING)],
    "createdAt": [("createdAt", ASCENDING)],
    "name": [("nameKey", ASCENDING)],
    "-name": [("nameKey", DESCENDING)],
}


def _listing_indexes() -> list[Index]:
    """Every filter x sort the listing offers, each with an index that serves it."""
    indexes = []
    for sort in ("leadHeat", "createdAt", "nameKey"):
        for filtered in ((), ("status",), ("leadSource",), ("status", "leadSource")):
            keys = [("venueId", ASCENDING), ("erased", ASCENDING)]
            keys += [(name, ASCENDING) for name in filtered]
            keys += [(sort, ASCENDING), ("_id", ASCENDING)]
            indexes.append(Index(COLLECTION, keys))
    return indexes


INDEXES: Sequence[Index] = (
    Index(
        COLLECTION,
        [("venueId", ASCENDING), ("emailKey", ASCENDING)],
        unique=True,
        name="contacts_venue_email",
    ),
    *_listing_indexes(),
)


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


def _parsed(value: str | None) -> Any:
    return None if value is None else json.loads(value)


def to_document(contact: Contact) -> Document:
    return {
        "_id": contact.id,
        "venueId": contact.venue_id,
        "name": contact.name,
        "nameKey": contact.name.casefold(),
        "email": contact.email,
        "emailKey": contact.email if not contact.erased else f"erased:{contact.id}",
        "phone": contact.phone,
        "leadSource": contact.lead_source.value,
        "status": contact.status.value,
        "leadHeat": contact.lead_heat,
        "heatReasons": [reason.model_dump(by_alias=True) for reason in contact.heat_reasons],
        "socialProfiles": _json(contact.social_profiles),
        "customFields": _json(contact.custom_fields),
        "opportunities": [
            {
                "opportunityId": o.opportunity_id,
                "outcome": o.outcome.value,
                "eventDate": o.event_date,
                "guestCount": o.guest_count,
                "value": None if o.value is None else str(o.value),
                "currency": o.currency,
                "name": o.name,
                "stage": o.stage,
            }
            for o in contact.opportunities
        ],
        "clientMessages": contact.client_messages,
        "documentsSigned": contact.documents_signed,
        "paymentsPaid": contact.payments_paid,
        "inquiries": contact.inquiries,
        "erased": contact.erased,
        "erasedAt": contact.erased_at,
        "createdAt": contact.created_at,
        "updatedAt": contact.updated_at,
        "version": contact.version,
    }


def _marked(document: Document, mark: Document | None) -> Document:
    return document if mark is None else {**document, IMPORT_MARK: mark}


def from_document(document: Mapping[str, Any]) -> Contact:
    created, updated = as_utc(document["createdAt"]), as_utc(document["updatedAt"])
    assert created is not None and updated is not None
    return Contact(
        id=document["_id"],
        venue_id=document["venueId"],
        name=document["name"],
        email=document["email"],
        phone=document.get("phone"),
        lead_source=LeadSource(document["leadSource"]),
        status=ContactStatus(document["status"]),
        created_at=created,
        updated_at=updated,
        lead_heat=int(document.get("leadHeat", 0)),
        heat_reasons=tuple(HeatReason.model_validate(r) for r in document.get("heatReasons", [])),
        social_profiles=_parsed(document.get("socialProfiles")),
        custom_fields=_parsed(document.get("customFields")),
        opportunities=tuple(
            TrackedOpportunity(
                opportunity_id=o["opportunityId"],
                outcome=OpportunityOutcome(o["outcome"]),
                event_date=as_utc(o.get("eventDate")),
                guest_count=o.get("guestCount"),
                value=None if o.get("value") is None else Decimal(o["value"]),
                currency=o.get("currency"),
                name=o.get("name"),
                stage=o.get("stage"),
            )
            for o in document.get("opportunities", [])
        ),
        client_messages=int(document.get("clientMessages", 0)),
        documents_signed=int(document.get("documentsSigned", 0)),
        payments_paid=int(document.get("paymentsPaid", 0)),
        inquiries=int(document.get("inquiries", 0)),
        erased_at=as_utc(document.get("erasedAt")),
        version=int(document.get("version", 1)),
    )


@dataclass(frozen=True)
class ContactFilter:
    status: ContactStatus | None = None
    lead_source: LeadSource | None = None
    heat_min: int | None = None
    heat_max: int | None = None
    prefix: str | None = None

    def query(self, venue_id: str) -> Document:
        query: Document = venue_scoped(venue_id, {"erased": False})
        if self.status is not None:
            query["status"] = self.status.value
        if self.lead_source is not None:
            query["leadSource"] = self.lead_source.value
        heat: Document = {}
        if self.heat_min is not None:
            heat["$gte"] = self.heat_min
        if self.heat_max is not None:
            heat["$lte"] = self.heat_max
        if heat:
            query["leadHeat"] = heat
        if self.prefix:
            key = self.prefix.casefold()
            upper = key + "\U0010ffff"
            query["$or"] = [
                {"nameKey": {"$gte": key, "$lt": upper}},
                {"emailKey": {"$gte": key, "$lt": upper}},
            ]
        return query


class ContactRepository(AggregateRepository[Contact]):
    COLLECTION = COLLECTION
    codec = Codec(to_document, from_document)

    async def add(self, contact: Contact) -> bool:
        """Insert with its events; ``False`` when the venue has a contact with this email."""
        try:
            await self.insert(contact)
        except DuplicateKeyError:
            return False
        return True

    async def save(self, contact: Contact, mark: Document | None = None) -> bool:
        """Write state and events unless someone saved since it was read (then ``False``);
        ``EmailTaken`` when another contact of the venue has its email. A ``mark`` is
        stored as the contact's ``importMark`` in the same write."""
        try:
            if mark is None:
                return await super().save(contact)
            saved = await self._outbox.save_versioned(
                self.collection,
                _marked(to_document(contact), mark),
                self.entries(contact),
                venue_id=contact.venue_id,
                version=contact.version,
            )
        except DuplicateKeyError:
            raise EmailTaken(contact.email) from None
        if saved:
            contact.version += 1
        return saved

    async def by_email(self, venue_id: str, email: str) -> Contact | None:
        return await self.find_one(venue_scoped(venue_id, {"emailKey": email}))

    async def page(
        self, venue_id: str, where: ContactFilter, sort: str, limit: int, cursor: str | None
    ) -> tuple[list[Contact], str | None]:
        return await self.find_page(
            where.query(venue_id), PageRequest(sort=SORTS[sort], limit=limit, cursor=cursor)
        )

    async def explain(
        self, venue_id: str, where: ContactFilter, sort: str, limit: int, cursor: str | None
    ) -> Document:
        """The store's plan for one page of a listing (tests prove it uses an index)."""
        return await self.explain_page(
            where.query(venue_id), PageRequest(sort=SORTS[sort], limit=limit, cursor=cursor)
        )

    # --- bulk (the CSV import) -----------------------------------------------------------

    async def by_emails(self, venue_id: str, emails: Sequence[str]) -> dict[str, Contact]:
        """The venue's contacts with these normalised emails (erased ones not), in one query."""
        if not emails:
            return {}
        cursor = self.collection.find(
            venue_scoped(venue_id, {"emailKey": {"$in": list(emails)}}), READ_FIELDS
        )
        return {document["emailKey"]: from_document(document) async for document in cursor}

    async def import_marks(
        self, venue_id: str, emails: Sequence[str], job_id: str, batch: int
    ) -> dict[str, Document]:
        """The ``importMark`` of those of these emails' contacts that batch ``batch`` of
        import job ``job_id`` wrote (what its rows did to each), by email."""
        if not emails:
            return {}
        query = venue_scoped(
            venue_id,
            {
                "emailKey": {"$in": list(emails)},
                f"{IMPORT_MARK}.job": job_id,
                f"{IMPORT_MARK}.batch": batch,
            },
        )
        cursor = self.collection.find(query, {"emailKey": 1, IMPORT_MARK: 1})
        return {document["emailKey"]: document[IMPORT_MARK] async for document in cursor}

    async def add_many(
        self, contacts: Sequence[Contact], marks: Mapping[str, Document] | None = None
    ) -> set[str]:
        """Insert new contacts in one unordered bulk write, each with its events inside.

        Answers the ids of those not inserted because their venue has a contact with that
        email already (added meanwhile); every other one is stored regardless. ``marks``
        (by contact id) are stored as the contact's ``importMark``, in the same write.
        """
        marks = marks or {}
        documents = [
            (_marked(to_document(contact), marks.get(contact.id)), self.entries(contact))
            for contact in contacts
        ]
        try:
            await self._outbox.insert_many(self.collection, documents, ordered=False)
        except BulkWriteError as exc:
            errors = duplicate_key_errors(exc)  # the venue has these emails already
            if errors is None:
                raise
            return {documents[error["index"]][0]["_id"] for error in errors}
        return set()


class EmailTaken(Exception):
    def __init__(self, email: str) -> None:
        super().__init__(email)
        self.email = email
