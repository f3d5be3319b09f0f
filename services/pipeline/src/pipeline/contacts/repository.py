"""The only module that speaks to the store about the contact projection (``contacts``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection

from gala.identity import venue_scoped
from gala.projections import Copy, keep_newest, keep_newest_many
from gala.store import Document, Index, Store
from pipeline.contacts.domain import ContactCopy

COLLECTION = "contacts"
INDEXES: Sequence[Index] = (Index(COLLECTION, [("venueId", ASCENDING), ("_id", ASCENDING)]),)


class ContactCopyRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def collection(self) -> AsyncCollection[Document]:
        return self._store[COLLECTION]

    async def get(self, venue_id: str, contact_id: str) -> ContactCopy | None:
        d = await self.collection.find_one(venue_scoped(venue_id, {"_id": contact_id}))
        if d is None:
            return None
        return ContactCopy(
            d["_id"], d["venueId"], d.get("name"), bool(d["erased"]), d["asOf"].astimezone(UTC)
        )

    async def upsert(self, venue_id: str, contact_id: str, name: str, as_of: datetime) -> bool:
        """Keep ``name`` unless the copy is erased or newer; ``True`` if it was written."""
        state = {"name": name, "erased": False}
        return await keep_newest(
            self.collection, contact_id, venue_id, state, as_of, {"erased": False}
        )

    async def get_many(self, contact_ids: Sequence[str]) -> dict[str, ContactCopy]:
        """The stored copies of these contacts (of any venue), by id."""
        cursor = self.collection.find({"_id": {"$in": list(contact_ids)}})
        return {
            d["_id"]: ContactCopy(
                d["_id"], d["venueId"], d.get("name"), bool(d["erased"]), d["asOf"].astimezone(UTC)
            )
            async for d in cursor
        }

    async def upsert_many(self, copies: Sequence[ContactCopy]) -> int:
        """``upsert`` for a batch of contact events, in one bulk write."""
        return await keep_newest_many(
            self.collection,
            [
                Copy(c.id, c.venue_id, {"name": c.name, "erased": False}, c.as_of,
                     {"erased": False})
                for c in copies
            ],
        )  # fmt: skip

    async def erase(self, venue_id: str, contact_id: str, at: datetime) -> None:
        await self.collection.update_one(
            {"_id": contact_id, "venueId": venue_id},
            {"$set": {"name": None, "erased": True, "asOf": at}},
            upsert=True,
        )
