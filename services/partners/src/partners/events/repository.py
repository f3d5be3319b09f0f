"""The only module that speaks to the store about the event log.

``event_log``: one document per position (``_id`` ``<venue>:<position>``), read by
bucket (an indexed string equality, pushed down by FerretDB). ``event_log_venues``: one
document per venue, its position counter (``position``, taken with ``$inc``) and
``firstPosition`` (what retention left). ``event_log_erased``: erased contacts, so that
their late events are not appended.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from gala.store import Document, Index, Store
from gala.values import required_utc
from partners.events.domain import (
    ERASED,
    ERASED_TYPE,
    EVENT,
    FILLER,
    LoggedEvent,
    bucket_of,
    entry_id,
)

ENTRIES = "event_log"
VENUES = "event_log_venues"
ERASED_CONTACTS = "event_log_erased"

INDEXES: Sequence[Index] = (
    Index(ENTRIES, [("bucket", ASCENDING)], name="event_log_bucket"),
    Index(
        ENTRIES,
        [("venueId", ASCENDING), ("eventId", ASCENDING)],
        unique=True,
        name="event_log_venue_event",
    ),
    Index(ENTRIES, [("venueId", ASCENDING), ("subject", ASCENDING)], name="event_log_subject"),
    Index(ENTRIES, [("venueId", ASCENDING), ("contactId", ASCENDING)], name="event_log_contact"),
)


def as_logged(document: Mapping[str, Any]) -> LoggedEvent:
    return LoggedEvent(
        position=int(document["position"]),
        id=document["eventId"],
        type=document["type"],
        source=document["source"],
        subject=document["subject"],
        time=required_utc(document["time"]),
        datacontenttype=document.get("datacontenttype", "application/json"),
        data=json.loads(document["data"]) if isinstance(document.get("data"), str) else None,
        extensions=dict(document.get("extensions") or {}),
    )


class EventLogRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def entries(self) -> Any:
        return self._store[ENTRIES]

    # --- writing -------------------------------------------------------------------

    async def has_event(self, venue_id: str, event_id: str) -> bool:
        found = await self.entries.find_one({"venueId": venue_id, "eventId": event_id}, {"_id": 1})
        return found is not None

    async def take_position(self, venue_id: str) -> int:
        """The venue's next position (atomic: no two writers get the same)."""
        counter = await self._store[VENUES].find_one_and_update(
            {"_id": venue_id},
            {"$inc": {"position": 1}, "$setOnInsert": {"firstPosition": 1}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        assert counter is not None  # an upsert answers the document
        return int(counter["position"])

    async def insert_entry(self, document: Document) -> bool:
        """``False`` if the position is taken (a reader filled it) or the event is
        logged already (the unique venue-and-event index)."""
        try:
            await self.entries.insert_one(document)
        except DuplicateKeyError:
            return False
        return True

    async def fill(self, venue_id: str, position: int, now: datetime) -> Document | None:
        """Put a filler at ``position`` unless an entry is there; answers what is there
        if it was not this filler."""
        filler = {
            "_id": entry_id(venue_id, position),
            "venueId": venue_id,
            "position": position,
            "bucket": bucket_of(venue_id, position),
            "kind": FILLER,
            "eventId": f"filler:{position}",
            "appendedAt": now,
        }
        if await self.insert_entry(filler):
            return None
        found: Document | None = await self.entries.find_one({"_id": entry_id(venue_id, position)})
        return found

    async def at(self, venue_id: str, position: int) -> Document | None:
        found: Document | None = await self.entries.find_one({"_id": entry_id(venue_id, position)})
        return found

    # --- reading -------------------------------------------------------------------

    async def venue(self, venue_id: str) -> tuple[int, int]:
        """The venue's last position taken and its first position kept."""
        counter = await self._store[VENUES].find_one({"_id": venue_id})
        if counter is None:
            return 0, 1
        return int(counter.get("position", 0)), int(counter.get("firstPosition", 1))

    async def bucket(self, venue_id: str, number: int) -> dict[int, Document]:
        """The entries of one bucket, by position (one indexed read)."""
        key = f"{venue_id}:{number}"
        documents = await self.entries.find({"bucket": key}).to_list(length=None)
        return {int(document["position"]): document for document in documents}

    async def explain_bucket(self, venue_id: str, number: int) -> Document:
        command = {"find": ENTRIES, "filter": {"bucket": f"{venue_id}:{number}"}}
        explained: Document = await self._store.db.command("explain", command)
        return explained

    # --- erasure -------------------------------------------------------------------

    async def mark_erased(self, venue_id: str, contact_id: str, now: datetime) -> None:
        await self._store[ERASED_CONTACTS].update_one(
            {"_id": f"{venue_id}:{contact_id}"},
            {"$setOnInsert": {"venueId": venue_id, "contactId": contact_id, "erasedAt": now}},
            upsert=True,
        )

    async def is_erased(self, venue_id: str, contact_id: str) -> bool:
        found = await self._store[ERASED_CONTACTS].find_one(
            {"_id": f"{venue_id}:{contact_id}"}, {"_id": 1}
        )
        return found is not None

    async def redact_about(self, venue_id: str, contact_id: str) -> int:
        """Drop the data of every entry about the contact (but the erasure itself)."""
        change = {"$set": {"kind": ERASED}, "$unset": {"data": "", "extensions": ""}}
        redacted = 0
        for query in (
            {"venueId": venue_id, "subject": contact_id, "kind": EVENT},
            {"venueId": venue_id, "contactId": contact_id, "kind": EVENT},
        ):
            result = await self.entries.update_many({**query, "type": {"$ne": ERASED_TYPE}}, change)
            redacted += result.modified_count
        return redacted

    # --- retention -----------------------------------------------------------------

    async def venues(self) -> list[Document]:
        documents: list[Document] = await (
            self._store[VENUES].find({}, {"position": 1, "firstPosition": 1}).to_list(length=None)
        )
        return documents

    async def expire_bucket(self, venue_id: str, number: int, next_first: int) -> None:
        """Readers jump past the bucket first, then it goes (both idempotent)."""
        await self._store[VENUES].update_one(
            {"_id": venue_id}, {"$max": {"firstPosition": next_first}}
        )
        await self.entries.delete_many({"bucket": f"{venue_id}:{number}"})
