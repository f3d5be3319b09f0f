"""The only module that speaks to the store about partner apps.

One document per app in ``partner_apps``, its pending events inside (the outbox rides
in the same write). A key is found by its hash through a unique index: two apps can
never share one, and the look-up reads one document.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pymongo import ASCENDING

from gala.aggregates import AggregateRepository, Codec
from gala.identity import venue_scoped
from gala.store import Document, Index, PageRequest
from gala.values import as_utc, required_utc
from partners.apps.domain import PartnerApp

COLLECTION = "partner_apps"

INDEXES: Sequence[Index] = (
    Index(COLLECTION, [("keyHash", ASCENDING)], unique=True, name="partner_apps_key_hash"),
    Index(COLLECTION, [("venueId", ASCENDING), ("_id", ASCENDING)], name="partner_apps_venue_id"),
)


def to_document(app: PartnerApp) -> Document:
    return {
        "_id": app.id,
        "venueId": app.venue_id,
        "name": app.name,
        "description": app.description,
        "keyHash": app.key_hash,
        "keyPrefix": app.key_prefix,
        "keyCreatedAt": app.key_created_at,
        "active": app.active,
        "revokedAt": app.revoked_at,
        "createdAt": app.created_at,
        "updatedAt": app.updated_at,
        "version": app.version,
    }


def from_document(document: Mapping[str, Any]) -> PartnerApp:
    return PartnerApp(
        id=document["_id"],
        venue_id=document["venueId"],
        name=document["name"],
        description=document.get("description"),
        key_hash=document["keyHash"],
        key_prefix=document["keyPrefix"],
        key_created_at=required_utc(document["keyCreatedAt"]),
        created_at=required_utc(document["createdAt"]),
        updated_at=required_utc(document["updatedAt"]),
        revoked_at=as_utc(document.get("revokedAt")),
        version=int(document.get("version", 1)),
    )


class PartnerAppRepository(AggregateRepository[PartnerApp]):
    COLLECTION = COLLECTION
    codec = Codec(to_document, from_document)

    async def by_key_hash(self, hashed: str) -> PartnerApp | None:
        return await self.find_one({"keyHash": hashed})

    async def page(
        self, venue_id: str, limit: int, cursor: str | None
    ) -> tuple[list[PartnerApp], str | None]:
        return await self.find_page(
            venue_scoped(venue_id), PageRequest([("_id", ASCENDING)], limit, cursor)
        )
