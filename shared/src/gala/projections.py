"""Copies of other services' records, kept from their events (projections).

A service keeps what it needs of another service's records (a contact's name, a user's
role) from the events that carry them, so it never calls that service. Events of one
record can arrive late or twice: a copy keeps the newest state by event time, and a
guard (e.g. "not erased") can make a state final.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from gala.store import Document

AS_OF = "asOf"


async def keep_newest(
    collection: AsyncCollection[Document],
    doc_id: str,
    venue_id: str,
    state: Mapping[str, Any],
    as_of: datetime,
    guard: Mapping[str, Any] | None = None,
) -> bool:
    """Write ``state`` as of ``as_of`` unless the stored copy is newer (or fails
    ``guard``); ``True`` if it was written. A copy without a time (made by another
    projection's partial update) counts as older than any event."""
    query: Document = {
        "_id": doc_id,
        "venueId": venue_id,
        "$or": [{AS_OF: {"$lte": as_of}}, {AS_OF: None}],
        **(guard or {}),
    }
    try:
        result = await collection.update_one(
            query, {"$set": {**state, "venueId": venue_id, AS_OF: as_of}}, upsert=True
        )
    except DuplicateKeyError:
        return False  # it exists, and is newer or fails the guard
    return result.matched_count == 1 or result.upserted_id is not None
