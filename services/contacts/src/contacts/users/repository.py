"""The only module that speaks to the store about users.

Users live in the ``users`` collection of the contacts database, one document each,
with their pending events inside (the outbox rides in the same write). Uniqueness of
the identity (``authSubject``) and of an email within a venue comes from unique
indexes, so two concurrent creations cannot both win. A save applies only to the
version it was computed from, so two concurrent changes of one user cannot lose each
other (or announce a change that did not happen).

The store has no multi-document transactions (FerretDB 1.24): "is this the venue's last
active ADMIN?" cannot be checked and acted on atomically. Every change that removes an
active ADMIN therefore runs under the venue's *admin guard*, a lease document in
``user_admin_guards``: the count and the write happen while no other such change of
that venue can, so two ADMINs demoting each other at the same moment cannot leave the
venue without one. The lease expires (a crashed holder blocks nobody for long).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from contacts.users.domain import User, UserError
from gala.aggregates import READ_FIELDS, AggregateRepository, Codec
from gala.errors import ServiceUnavailable
from gala.identity import Role, venue_scoped
from gala.store import Document, Index, PageRequest
from gala.values import as_utc

COLLECTION = "users"
GUARDS = "user_admin_guards"

INDEXES: Sequence[Index] = (
    Index(COLLECTION, [("authSubject", ASCENDING)], unique=True, name="users_auth_subject"),
    Index(
        COLLECTION,
        [("venueId", ASCENDING), ("email", ASCENDING)],
        unique=True,
        name="users_venue_email",
    ),
    Index(COLLECTION, [("venueId", ASCENDING), ("role", ASCENDING)], name="users_venue_role"),
    Index(COLLECTION, [("venueId", ASCENDING), ("_id", ASCENDING)], name="users_venue_id"),
    # the listing's filters (role, active, both), each then in its order (the id)
    Index(COLLECTION, [("venueId", 1), ("role", 1), ("_id", 1)], name="users_venue_role_id"),
    Index(COLLECTION, [("venueId", 1), ("active", 1), ("_id", 1)], name="users_venue_active_id"),
    Index(
        COLLECTION,
        [("venueId", 1), ("role", 1), ("active", 1), ("_id", 1)],
        name="users_venue_role_active_id",
    ),
    # the internal look-up by email across venues (dev tooling)
    Index(COLLECTION, [("email", ASCENDING)], name="users_email"),
)

"""What a read needs: never the pending events riding in the document."""

GUARD_LEASE = timedelta(seconds=15)
GUARD_WAIT_SECONDS = 10.0
_RELEASED = datetime(1970, 1, 1, tzinfo=UTC)


class AdminGuardBusy(UserError, ServiceUnavailable):
    def __init__(self) -> None:
        super().__init__("Another change of this venue's ADMINs is in progress; try again.")


def to_document(user: User) -> Document:
    return {
        "_id": user.id,
        "venueId": user.venue_id,
        "authSubject": user.auth_subject,
        "email": user.email,
        "name": user.name,
        "image": user.image,
        "emailVerified": user.email_verified,
        "role": user.role.value,
        "active": user.active,
        "createdAt": user.created_at,
        "updatedAt": user.updated_at,
        "version": user.version,
    }


def from_document(document: Mapping[str, Any]) -> User:
    created = as_utc(document["createdAt"])
    updated = as_utc(document["updatedAt"])
    assert created is not None and updated is not None
    return User(
        id=document["_id"],
        venue_id=document["venueId"],
        auth_subject=document["authSubject"],
        email=document["email"],
        name=document.get("name"),
        image=document.get("image"),
        email_verified=as_utc(document.get("emailVerified")),
        role=Role(document["role"]),
        active=bool(document["active"]),
        created_at=created,
        updated_at=updated,
        version=int(document.get("version", 1)),
    )


class UserRepository(AggregateRepository[User]):
    COLLECTION = COLLECTION
    codec = Codec(to_document, from_document)

    async def add(self, user: User) -> bool:
        """Insert a new user with its events; ``False`` if its identity or email is taken."""
        try:
            await self.insert(user)
        except DuplicateKeyError:
            return False
        return True

    async def save(self, user: User) -> bool:
        """Write ``user``'s state and events if nobody saved it since it was read (an
        unchanged user is not written); ``False`` when the stored version moved on."""
        if not user.pending_events:
            return True
        return await super().save(user)

    async def by_auth_subject(self, auth_subject: str) -> User | None:
        return await self.find_one({"authSubject": auth_subject})

    async def by_email(self, venue_id: str, email: str) -> User | None:
        return await self.find_one(venue_scoped(venue_id, {"email": email}))

    async def with_email(self, email: str, limit: int) -> list[User]:
        """Users of any venue with ``email`` (an email is unique per venue only)."""
        cursor = self.collection.find({"email": email}, READ_FIELDS)
        cursor = cursor.sort("_id", ASCENDING).limit(limit)
        return [from_document(document) for document in await cursor.to_list(length=limit)]

    async def page(
        self,
        venue_id: str,
        *,
        role: Role | None,
        active: bool | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[User], str | None]:
        query: Document = venue_scoped(venue_id)
        if role is not None:
            query["role"] = role.value
        if active is not None:
            query["active"] = active
        return await self.find_page(query, PageRequest(limit=limit, cursor=cursor))

    async def count_other_active_admins(self, venue_id: str, user_id: str) -> int:
        """Meaningful only under :meth:`admin_guard` (see the module docstring)."""
        query = venue_scoped(
            venue_id, {"role": Role.ADMIN.value, "active": True, "_id": {"$ne": user_id}}
        )
        return await self.collection.count_documents(query)

    @asynccontextmanager
    async def admin_guard(self, venue_id: str) -> AsyncIterator[None]:
        """Hold the venue's admin guard: one ADMIN-removing change of a venue at a time."""
        guards = self._store[GUARDS]
        owner = uuid.uuid4().hex
        with contextlib.suppress(DuplicateKeyError):  # another request created it just now
            await guards.update_one(
                {"_id": venue_id}, {"$setOnInsert": {"until": _RELEASED}}, upsert=True
            )
        deadline = time.monotonic() + GUARD_WAIT_SECONDS
        delay = 0.005
        while True:
            now = datetime.now(UTC)
            taken = await guards.find_one_and_update(
                {"_id": venue_id, "until": {"$lt": now}},
                {"$set": {"owner": owner, "until": now + GUARD_LEASE}},
            )
            if taken is not None:
                break
            if time.monotonic() > deadline:
                raise AdminGuardBusy()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)
        try:
            yield
        finally:
            await guards.update_one(
                {"_id": venue_id, "owner": owner}, {"$set": {"until": _RELEASED}}
            )
