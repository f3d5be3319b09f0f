"""The only module that speaks to the store about rooms and their bookings (claims).

Rooms in ``rooms`` (unique name per venue: ``nameKey``); claims in ``room_claims``,
``_id`` = venue, room and UTC day, so the store lets only one exist.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from gala.identity import venue_scoped
from gala.store import Document, Index, Page, PageRequest, Store, find_page
from pipeline.rooms.domain import Room

COLLECTION = "rooms"
CLAIMS = "room_claims"

INDEXES: Sequence[Index] = (
    Index(COLLECTION, [("venueId", ASCENDING), ("nameKey", ASCENDING)], unique=True),
    # the listing's page: its order (by name) and the id find_page adds as the tie-break
    Index(COLLECTION, [("venueId", ASCENDING), ("nameKey", ASCENDING), ("_id", ASCENDING)]),
    Index(CLAIMS, [("opportunityId", ASCENDING)]),
)


def to_document(room: Room) -> Document:
    return {
        "_id": room.id,
        "venueId": room.venue_id,
        "name": room.name,
        "nameKey": room.name.casefold(),
        "capacity": room.capacity,
        "createdAt": room.created_at,
    }


def from_document(d: Mapping[str, Any]) -> Room:
    return Room(d["_id"], d["venueId"], d["name"], int(d["capacity"]), d["createdAt"])


@dataclass(frozen=True)
class Claim:
    key: str
    opportunity_id: str
    version: int
    claimed_at: datetime


def _claim_id(venue_id: str, key: str) -> str:
    return f"{venue_id}|{key}"


class RoomRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def collection(self) -> AsyncCollection[Document]:
        return self._store[COLLECTION]

    @property
    def claims(self) -> AsyncCollection[Document]:
        return self._store[CLAIMS]

    async def add(self, room: Room) -> bool:
        try:
            await self.collection.insert_one(to_document(room))
        except DuplicateKeyError:
            return False
        return True

    async def get(self, venue_id: str, room_id: str) -> Room | None:
        document = await self.collection.find_one(venue_scoped(venue_id, {"_id": room_id}))
        return from_document(document) if document is not None else None

    async def page(self, venue_id: str, limit: int, cursor: str | None) -> Page:
        return await find_page(
            self.collection,
            venue_scoped(venue_id),
            PageRequest(sort=[("nameKey", ASCENDING)], limit=limit, cursor=cursor),
        )

    # --- claims -------------------------------------------------------------------

    async def insert_claim(self, venue_id: str, key: str, opportunity_id: str, version: int,
                           now: datetime) -> bool:  # fmt: skip
        try:
            await self.claims.insert_one(
                {
                    "_id": _claim_id(venue_id, key),
                    "venueId": venue_id,
                    "key": key,
                    "opportunityId": opportunity_id,
                    "version": version,
                    "claimedAt": now,
                }
            )
        except DuplicateKeyError:
            return False
        return True

    async def get_claim(self, venue_id: str, key: str) -> Claim | None:
        d = await self.claims.find_one({"_id": _claim_id(venue_id, key)})
        if d is None:
            return None
        return Claim(key, d["opportunityId"], int(d["version"]), d["claimedAt"].astimezone(UTC))

    async def replace_claim(
        self, venue_id: str, current: Claim, opportunity_id: str, version: int, now: datetime
    ) -> bool:
        """Take ``current`` over (or refresh it), unless it changed since it was read."""
        result = await self.claims.update_one(
            {
                "_id": _claim_id(venue_id, current.key),
                "opportunityId": current.opportunity_id,
                "version": current.version,
            },
            {"$set": {"opportunityId": opportunity_id, "version": version, "claimedAt": now}},
        )
        return result.matched_count == 1

    async def release(
        self, venue_id: str, key: str, opportunity_id: str, *, up_to_version: int
    ) -> None:
        """Delete the claim if this opportunity still owns it from ``up_to_version`` or before."""
        await self.claims.delete_one(
            {
                "_id": _claim_id(venue_id, key),
                "opportunityId": opportunity_id,
                "version": {"$lte": up_to_version},
            }
        )
