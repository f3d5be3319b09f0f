"""The only module that speaks to the store about documents (``documents``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING, DESCENDING

from billing.documents.domain import Document, Links, Signature, Stored
from gala.aggregates import AggregateRepository, Codec
from gala.identity import venue_scoped
from gala.store import Document as StoreDocument
from gala.store import Index, PageRequest
from gala.values import as_utc

COLLECTION = "documents"
SORT: Sequence[tuple[str, int]] = [("createdAt", DESCENDING)]
INDEXES: Sequence[Index] = (
    Index(COLLECTION, [("venueId", ASCENDING), ("createdAt", ASCENDING), ("_id", 1)]),
    *(
        Index(COLLECTION, [("venueId", 1), (name, 1), ("createdAt", 1), ("_id", 1)])
        for name in ("opportunityId", "projectId", "contactId")
    ),
)


def to_document(d: Document) -> StoreDocument:
    s = d.signature
    return {
        "_id": d.id,
        "venueId": d.venue_id,
        "name": d.name,
        "type": d.content_type,
        "opportunityId": d.links.opportunity_id,
        "projectId": d.links.project_id,
        "contactId": d.links.contact_id,
        "blobKey": d.file.key,
        "size": d.file.size,
        "sha256": d.file.sha256,
        "uploadedBy": d.uploaded_by,
        "isSigned": s is not None,
        "signedAt": s.signed_at if s else None,
        "signature": None
        if s is None
        else {
            "signerId": s.signer_id,
            "signerName": s.signer_name,
            "address": s.address,
            "userAgent": s.user_agent,
            "sha256": s.sha256,
            "consent": s.consent,
        },
        "createdAt": d.created_at,
        "updatedAt": d.updated_at,
        "version": d.version,
    }


def from_document(m: Mapping[str, Any]) -> Document:
    created, updated = as_utc(m["createdAt"]), as_utc(m["updatedAt"])
    assert created is not None and updated is not None
    s = m.get("signature")
    signed_at = as_utc(m.get("signedAt"))
    return Document(
        id=m["_id"],
        venue_id=m["venueId"],
        name=m["name"],
        content_type=m["type"],
        links=Links(m.get("opportunityId"), m.get("projectId"), m.get("contactId")),
        file=Stored(m["blobKey"], int(m["size"]), m["sha256"]),
        uploaded_by=m["uploadedBy"],
        created_at=created,
        updated_at=updated,
        signature=None
        if s is None or signed_at is None
        else Signature(
            s["signerId"],
            s["signerName"],
            signed_at,
            s["address"],
            s.get("userAgent"),
            s["sha256"],
            s["consent"],
        ),
        version=int(m["version"]),
    )


@dataclass(frozen=True)
class DocumentFilter:
    opportunity_id: str | None = None
    project_id: str | None = None
    contact_id: str | None = None
    opportunity_ids: Sequence[str] | None = None
    """A CLIENT's: only documents of these opportunities or their projects."""
    project_ids: Sequence[str] | None = None

    def query(self, venue_id: str) -> StoreDocument:
        query: StoreDocument = venue_scoped(venue_id)
        for name, value in (
            ("opportunityId", self.opportunity_id),
            ("projectId", self.project_id),
            ("contactId", self.contact_id),
        ):
            if value is not None:
                query[name] = value
        if self.opportunity_ids is not None or self.project_ids is not None:
            query["$or"] = [
                {"opportunityId": {"$in": list(self.opportunity_ids or [])}},
                {"projectId": {"$in": list(self.project_ids or [])}},
            ]
        return query


class DocumentRepository(AggregateRepository[Document]):
    COLLECTION = COLLECTION
    codec = Codec(to_document, from_document)

    async def page(
        self, venue_id: str, where: DocumentFilter, limit: int, cursor: str | None
    ) -> tuple[list[Document], str | None]:
        return await self.find_page(
            where.query(venue_id), PageRequest(sort=SORT, limit=limit, cursor=cursor)
        )
