"""The only module that speaks to the store about the contact copies (``contacts``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pymongo.asynchronous.collection import AsyncCollection

from billing.contacts.domain import ContactCopy
from gala.identity import venue_scoped
from gala.projections import Copy, keep_newest, keep_newest_many
from gala.store import Document, Index, Store

COLLECTION = "contacts"
INDEXES: Sequence[Index] = ()


class ContactCopyRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def _contacts(self) -> AsyncCollection[Document]:
        return self._store[COLLECTION]

    async def get(self, venue_id: str, contact_id: str) -> ContactCopy | None:
        d = await self._contacts.find_one(venue_scoped(venue_id, {"_id": contact_id}))
        if d is None:
            return None
        return ContactCopy(d["_id"], d["venueId"], d.get("name"), d.get("email"), d["erased"])

    async def keep(self, contact: ContactCopy, as_of: datetime) -> bool:
        state = {"name": contact.name, "email": contact.email, "erased": False}
        return await keep_newest(
            self._contacts, contact.id, contact.venue_id, state, as_of, {"erased": False}
        )

    async def keep_many(self, contacts: Sequence[tuple[ContactCopy, datetime]]) -> int:
        """``keep`` for a batch of contact events, in one bulk write."""
        return await keep_newest_many(
            self._contacts,
            [
                Copy(
                    contact.id,
                    contact.venue_id,
                    {"name": contact.name, "email": contact.email, "erased": False},
                    as_of,
                    {"erased": False},
                )
                for contact, as_of in contacts
            ],
        )

    async def erase(self, venue_id: str, contact_id: str, at: datetime) -> None:
        await self._contacts.update_one(
            {"_id": contact_id, "venueId": venue_id},
            {"$set": {"name": None, "email": None, "erased": True, "asOf": at}},
            upsert=True,
        )
