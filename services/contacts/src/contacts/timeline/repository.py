"""The timeline store: one document per (event, contact), written idempotently."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import datetime

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from contacts.timeline.entries import Entry
from gala.identity import venue_scoped
from gala.store import Document, Index, PageRequest, Store, find_page

COLLECTION = "timeline"

INDEXES: Sequence[Index] = (
    Index(
        COLLECTION,
        [("venueId", ASCENDING), ("contactId", ASCENDING), ("at", DESCENDING), ("_id", DESCENDING)],
        name="timeline_contact_newest",
    ),
    Index(COLLECTION, [("contactId", ASCENDING), ("kind", ASCENDING)], name="timeline_kind"),
)


class TimelineRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def _entries(self) -> AsyncCollection[Document]:
        return self._store[COLLECTION]

    async def record(
        self, *, event_id: str, venue_id: str, contact_id: str, at: datetime, entry: Entry
    ) -> None:
        """Add an entry once: the same event delivered again adds nothing."""
        with contextlib.suppress(DuplicateKeyError):
            await self._entries.insert_one(
                {
                    "_id": f"{event_id}|{contact_id}",
                    "venueId": venue_id,
                    "contactId": contact_id,
                    "at": at,
                    "kind": entry.kind,
                    "summary": entry.summary,
                    "details": entry.details,
                }
            )

    async def count(self, venue_id: str, contact_id: str, kind: str) -> int:
        return await self._entries.count_documents(
            venue_scoped(venue_id, {"contactId": contact_id, "kind": kind})
        )

    async def page(
        self, venue_id: str, contact_id: str, limit: int, cursor: str | None
    ) -> tuple[list[Document], str | None]:
        page = await find_page(
            self._entries,
            venue_scoped(venue_id, {"contactId": contact_id}),
            PageRequest(sort=[("at", DESCENDING), ("_id", DESCENDING)], limit=limit, cursor=cursor),
        )
        return page.items, page.next_cursor

    async def forget(self, venue_id: str, contact_id: str) -> None:
        """An erased contact's history goes with its personal data."""
        await self._entries.delete_many(venue_scoped(venue_id, {"contactId": contact_id}))
