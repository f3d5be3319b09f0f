"""The only module that speaks to the store about opportunities.

One document per opportunity in ``opportunities``, its pending events inside (the
outbox). Money is stored as int64 minor units (``valueMinor``) with its ``currency``;
``roomClaim`` is the room-and-day key the opportunity holds (see rooms/). Saves apply
only to the version they were computed from. Custom fields are stored as JSON text:
kept exactly as given, with keys the store would refuse.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bson import Int64
from pymongo import ASCENDING, DESCENDING, UpdateMany
from pymongo.errors import DuplicateKeyError

from gala.aggregates import AggregateRepository, Codec
from gala.contracts.pipeline import OpportunityOutcome
from gala.identity import venue_scoped
from gala.store import Document, Index, PageRequest
from gala.values import as_utc
from pipeline.opportunities.domain import Opportunity

COLLECTION = "opportunities"
SORT: Sequence[tuple[str, int]] = [("createdAt", DESCENDING)]


def _listing_indexes() -> list[Index]:
    """Each equality filter the listing offers, then its order (newest first) and the id."""
    indexes = [Index(COLLECTION, [("venueId", ASCENDING), ("createdAt", ASCENDING), ("_id", 1)])]
    for name in ("stageId", "contactId", "eventType", "roomAssignment", "outcome"):
        keys = [("venueId", ASCENDING), (name, ASCENDING), ("createdAt", ASCENDING), ("_id", 1)]
        indexes.append(Index(COLLECTION, keys))
    indexes.append(Index(COLLECTION, [("venueId", ASCENDING), ("eventDate", ASCENDING)]))
    return indexes


INDEXES: Sequence[Index] = (
    *_listing_indexes(),
    # the board: open opportunities of a venue per stage, newest changes first
    Index(
        COLLECTION,
        [("venueId", 1), ("outcome", 1), ("stageId", 1), ("updatedAt", 1), ("_id", 1)],
        name="board",
    ),
)


def to_document(o: Opportunity) -> Document:
    return {
        "_id": o.id,
        "venueId": o.venue_id,
        "name": o.name,
        "contactId": o.contact_id,
        "contactName": o.contact_name,
        "stageId": o.stage_id,
        "stage": o.stage,
        "valueMinor": None if o.value_minor is None else Int64(o.value_minor),
        "currency": o.currency,
        "eventType": o.event_type,
        "eventDate": o.event_date,
        "guestCount": o.guest_count,
        "requiresCatering": o.requires_catering,
        "roomAssignment": o.room_assignment,
        "roomName": o.room_name,
        "customFields": None if o.custom_fields is None else json.dumps(o.custom_fields),
        "outcome": o.outcome.value,
        "wonAt": o.won_at,
        "lostAt": o.lost_at,
        "lostReason": o.lost_reason,
        "roomClaim": o.room_claim,
        "createdAt": o.created_at,
        "updatedAt": o.updated_at,
        "version": o.version,
    }


def from_document(d: Mapping[str, Any]) -> Opportunity:
    created, updated = as_utc(d["createdAt"]), as_utc(d["updatedAt"])
    assert created is not None and updated is not None
    custom = d.get("customFields")
    value = d.get("valueMinor")
    return Opportunity(
        id=d["_id"],
        venue_id=d["venueId"],
        name=d["name"],
        contact_id=d["contactId"],
        contact_name=d.get("contactName"),
        stage_id=d["stageId"],
        stage=d["stage"],
        currency=d["currency"],
        created_at=created,
        updated_at=updated,
        value_minor=None if value is None else int(value),
        event_type=d.get("eventType"),
        event_date=as_utc(d.get("eventDate")),
        guest_count=d.get("guestCount"),
        requires_catering=bool(d.get("requiresCatering")),
        room_assignment=d.get("roomAssignment"),
        room_name=d.get("roomName"),
        custom_fields=None if custom is None else json.loads(custom),
        outcome=OpportunityOutcome(d["outcome"]),
        won_at=as_utc(d.get("wonAt")),
        lost_at=as_utc(d.get("lostAt")),
        lost_reason=d.get("lostReason"),
        room_claim=d.get("roomClaim"),
        version=int(d["version"]),
    )


@dataclass(frozen=True)
class OpportunityFilter:
    stage_id: str | None = None
    contact_id: str | None = None
    event_type: str | None = None
    room_assignment: str | None = None
    outcome: OpportunityOutcome | None = None
    event_from: datetime | None = None
    event_to: datetime | None = None

    def query(self, venue_id: str) -> Document:
        query: Document = venue_scoped(venue_id)
        for name, value in (
            ("stageId", self.stage_id),
            ("contactId", self.contact_id),
            ("eventType", self.event_type),
            ("roomAssignment", self.room_assignment),
            ("outcome", self.outcome.value if self.outcome else None),
        ):
            if value is not None:
                query[name] = value
        dates: Document = {}
        if self.event_from is not None:
            dates["$gte"] = self.event_from
        if self.event_to is not None:
            dates["$lt"] = self.event_to
        if dates:
            query["eventDate"] = dates
        return query


@dataclass(frozen=True)
class HolderState:
    """What a room claim needs to know of the opportunity it names."""

    version: int
    room_claim: str | None


class OpportunityRepository(AggregateRepository[Opportunity]):
    COLLECTION = COLLECTION
    codec = Codec(to_document, from_document)

    async def page(
        self, venue_id: str, where: OpportunityFilter, limit: int, cursor: str | None
    ) -> tuple[list[Opportunity], str | None]:
        return await self.find_page(
            where.query(venue_id), PageRequest(sort=SORT, limit=limit, cursor=cursor)
        )

    async def count_open_in(self, venue_id: str, stage_ids: Sequence[str]) -> dict[str, int]:
        """How many open opportunities are in each of ``stage_ids`` (only those with some)."""
        counts: dict[str, int] = {}
        for stage_id in stage_ids:
            count = await self.collection.count_documents(
                venue_scoped(venue_id, {"outcome": "OPEN", "stageId": stage_id})
            )
            if count:
                counts[stage_id] = count
        return counts

    async def count_with_value(self, venue_id: str) -> int:
        return await self.collection.count_documents(
            venue_scoped(venue_id, {"valueMinor": {"$ne": None}})
        )

    async def ids_of_contact(self, venue_id: str, contact_id: str) -> list[str]:
        cursor = self.collection.find(venue_scoped(venue_id, {"contactId": contact_id}), {"_id": 1})
        return [d["_id"] async for d in cursor]

    async def set_contact_name(self, venue_id: str, contact_id: str, name: str | None) -> None:
        """The copied contact name on every opportunity of the contact (no event: no
        published payload carries it)."""
        await self.collection.update_many(
            venue_scoped(venue_id, {"contactId": contact_id}), {"$set": {"contactName": name}}
        )

    async def set_contact_names(self, names: Sequence[tuple[str, str, str | None]]) -> None:
        """``set_contact_name`` for many (venue, contact, name), in one bulk write."""
        if names:
            await self.collection.bulk_write(
                [
                    UpdateMany(
                        venue_scoped(venue_id, {"contactId": contact_id}),
                        {"$set": {"contactName": name}},
                    )
                    for venue_id, contact_id, name in names
                ],
                ordered=False,
            )

    # --- for room claims (see rooms/) ------------------------------------------------

    async def holder_state(self, opportunity_id: str) -> HolderState | None:
        document = await self.collection.find_one(
            {"_id": opportunity_id}, {"version": 1, "roomClaim": 1}
        )
        if document is None:
            return None
        return HolderState(int(document["version"]), document.get("roomClaim"))

    async def fence(self, opportunity_id: str, version: int | None) -> bool:
        """Bump the version so that a save computed from ``version`` can no longer land;
        for an opportunity never inserted (None), a tombstone makes its insert fail."""
        if version is None:
            try:
                await self.collection.insert_one(
                    {"_id": opportunity_id, "venueId": None, "fenced": True, "version": 1}
                )
            except DuplicateKeyError:
                return False
            return True
        result = await self.collection.update_one(
            {"_id": opportunity_id, "version": version}, {"$inc": {"version": 1}}
        )
        return result.matched_count == 1
