"""The only module that speaks to the store about webhook endpoints (and the venue
ADMINs they notify).

Endpoints live in ``webhook_endpoints``, one document each, with their pending events
inside (the outbox rides in the same write); a save applies only to the version it was
read at. Secrets are kept in the endpoint's document as they are: signing needs the
secret itself and the store has no KMS, so whoever reads the partners database reads
the secrets (its access must be guarded like the internal token secret).

``venue_admins`` is a copy of the venue's active ADMIN users (from contacts' user
events): who is mailed when an endpoint is disabled for failing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING

from gala.aggregates import AggregateRepository, Codec
from gala.identity import Role, venue_scoped
from gala.projections import keep_newest
from gala.store import Document, Index, PageRequest, Store
from gala.values import as_utc, required_utc
from partners.webhooks.domain import DisabledReason, Endpoint, Secret

COLLECTION = "webhook_endpoints"
ADMINS = "venue_admins"
INDEXES: Sequence[Index] = (
    Index(COLLECTION, [("venueId", ASCENDING), ("_id", ASCENDING)], name="venue_id"),
    Index(COLLECTION, [("venueId", ASCENDING), ("enabled", ASCENDING)], name="venue_enabled"),
    Index(ADMINS, [("venueId", ASCENDING), ("role", ASCENDING)], name="venue_role"),
)


def to_document(e: Endpoint) -> Document:
    return {
        "_id": e.id,
        "venueId": e.venue_id,
        "url": e.url,
        "eventTypes": list(e.event_types),
        "description": e.description,
        "secrets": [
            {"value": s.value, "createdAt": s.created_at, "expiresAt": s.expires_at}
            for s in e.secrets
        ],
        "enabled": e.enabled,
        "disabledReason": e.disabled_reason.value if e.disabled_reason else None,
        "disabledAt": e.disabled_at,
        "failingSince": e.failing_since,
        "createdAt": e.created_at,
        "updatedAt": e.updated_at,
        "version": e.version,
    }


def from_document(d: Mapping[str, Any]) -> Endpoint:
    reason = d.get("disabledReason")
    return Endpoint(
        id=d["_id"],
        venue_id=d["venueId"],
        url=d["url"],
        event_types=list(d["eventTypes"]),
        description=d.get("description", ""),
        secrets=[
            Secret(s["value"], required_utc(s["createdAt"]), as_utc(s.get("expiresAt")))
            for s in d["secrets"]
        ],
        enabled=bool(d["enabled"]),
        disabled_reason=DisabledReason(reason) if reason else None,
        disabled_at=as_utc(d.get("disabledAt")),
        failing_since=as_utc(d.get("failingSince")),
        created_at=required_utc(d["createdAt"]),
        updated_at=required_utc(d["updatedAt"]),
        version=int(d["version"]),
    )


class EndpointRepository(AggregateRepository[Endpoint]):
    COLLECTION = COLLECTION
    codec = Codec(to_document, from_document)

    async def page(
        self, venue_id: str, limit: int, cursor: str | None
    ) -> tuple[list[Endpoint], str | None]:
        """One page of the venue's endpoints, oldest first (through ``venue_id``)."""
        return await self.find_page(
            venue_scoped(venue_id), PageRequest([("_id", ASCENDING)], limit, cursor)
        )

    async def enabled_of(self, venue_id: str) -> list[Endpoint]:
        """The venue's enabled endpoints (through ``venue_enabled``): a venue has few."""
        found = self.collection.find(venue_scoped(venue_id, {"enabled": True}))
        return [from_document(d) async for d in found]

    async def delete(self, venue_id: str, endpoint_id: str) -> bool:
        result = await self.collection.delete_one(venue_scoped(venue_id, {"_id": endpoint_id}))
        return result.deleted_count == 1

    async def mark_failing(self, venue_id: str, endpoint_id: str, since: datetime) -> None:
        """The first failure since the last success (kept if one is known already)."""
        await self.collection.update_one(
            venue_scoped(venue_id, {"_id": endpoint_id, "failingSince": None}),
            {"$set": {"failingSince": since}, "$inc": {"version": 1}},
        )

    async def mark_healthy(self, venue_id: str, endpoint_id: str) -> None:
        await self.collection.update_one(
            venue_scoped(venue_id, {"_id": endpoint_id, "failingSince": {"$ne": None}}),
            {"$set": {"failingSince": None}, "$inc": {"version": 1}},
        )


class AdminRepository:
    """The venue's ADMIN users (a copy kept from contacts' user events)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def keep(
        self,
        venue_id: str,
        user_id: str,
        email: str,
        name: str | None,
        role: str,
        active: bool,
        as_of: datetime,
    ) -> bool:
        state = {"email": email, "name": name, "role": role, "active": active}
        return await keep_newest(self._store[ADMINS], user_id, venue_id, state, as_of)

    async def emails_of(self, venue_id: str) -> list[str]:
        """The addresses of the venue's active ADMINs (through ``venue_role``)."""
        found = self._store[ADMINS].find(
            venue_scoped(venue_id, {"role": Role.ADMIN.value, "active": True}), {"email": 1}
        )
        return sorted({d["email"] async for d in found if d.get("email")})
