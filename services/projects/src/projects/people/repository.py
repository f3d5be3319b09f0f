"""The only module that speaks to the store about the people copies (``users`` and
``contacts``): one document per user or contact, ``_id`` its id in the contacts service."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection

from gala.identity import Role, venue_scoped
from gala.projections import Copy, keep_newest, keep_newest_many
from gala.store import Document, Index, Store
from gala.values import as_utc
from projects.people.domain import ContactCopy, UserCopy

USERS = "users"
CONTACTS = "contacts"
INDEXES: Sequence[Index] = (
    Index(USERS, [("venueId", ASCENDING), ("email", ASCENDING)]),
    Index(CONTACTS, [("venueId", ASCENDING), ("email", ASCENDING)]),
)


def _user(d: Mapping[str, Any]) -> UserCopy:
    as_of = as_utc(d["asOf"])
    assert as_of is not None
    return UserCopy(d["_id"], d["venueId"], d["email"], Role(d["role"]), d["active"], as_of)


def _contact(d: Mapping[str, Any]) -> ContactCopy:
    as_of = as_utc(d["asOf"])
    assert as_of is not None
    return ContactCopy(d["_id"], d["venueId"], d.get("email"), bool(d["erased"]), as_of)


class PeopleRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def users(self) -> AsyncCollection[Document]:
        return self._store[USERS]

    @property
    def contacts(self) -> AsyncCollection[Document]:
        return self._store[CONTACTS]

    async def keep_user(self, user: UserCopy) -> bool:
        """Keep ``user`` unless a newer copy exists; ``True`` if it was written."""
        state = {"email": user.email, "role": user.role.value, "active": user.active}
        return await keep_newest(self.users, user.id, user.venue_id, state, user.as_of)

    async def user(self, venue_id: str, user_id: str) -> UserCopy | None:
        d = await self.users.find_one(venue_scoped(venue_id, {"_id": user_id}))
        return _user(d) if d is not None else None

    async def users_with_email(self, venue_id: str, email: str) -> list[UserCopy]:
        cursor = self.users.find(venue_scoped(venue_id, {"email": email}))
        return [_user(d) async for d in cursor]

    async def keep_contact(self, contact: ContactCopy) -> bool:
        """Keep ``contact`` unless it is erased or a newer copy exists."""
        state = {"email": contact.email, "erased": False}
        return await keep_newest(
            self.contacts, contact.id, contact.venue_id, state, contact.as_of, {"erased": False}
        )

    async def keep_contacts(self, contacts: Sequence[ContactCopy]) -> int:
        """``keep_contact`` for a batch of contact events, in one bulk write."""
        return await keep_newest_many(
            self.contacts,
            [
                Copy(c.id, c.venue_id, {"email": c.email, "erased": False}, c.as_of,
                     {"erased": False})
                for c in contacts
            ],
        )  # fmt: skip

    async def contacts_by_id(self, contact_ids: Sequence[str]) -> dict[str, ContactCopy]:
        """The stored copies of these contacts (of any venue), by id."""
        cursor = self.contacts.find({"_id": {"$in": list(contact_ids)}})
        return {d["_id"]: _contact(d) async for d in cursor}

    async def users_with_emails(self, venue_id: str, emails: Sequence[str]) -> list[UserCopy]:
        cursor = self.users.find(venue_scoped(venue_id, {"email": {"$in": list(emails)}}))
        return [_user(d) async for d in cursor]

    async def erase_contact(self, contact: ContactCopy) -> None:
        await self.contacts.update_one(
            {"_id": contact.id, "venueId": contact.venue_id},
            {"$set": {"email": None, "erased": True, "asOf": contact.as_of}},
            upsert=True,
        )

    async def contact(self, venue_id: str, contact_id: str) -> ContactCopy | None:
        d = await self.contacts.find_one(venue_scoped(venue_id, {"_id": contact_id}))
        return _contact(d) if d is not None else None

    async def contacts_with_email(self, venue_id: str, email: str) -> list[ContactCopy]:
        cursor = self.contacts.find(venue_scoped(venue_id, {"email": email, "erased": False}))
        return [_contact(d) async for d in cursor]
