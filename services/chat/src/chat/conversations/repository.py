"""The only module that speaks to the store about conversations (``conversations``, one
per project, ``_id`` = the project id): the copy of the project and its task assignees,
and the counter that numbers its messages; and ``users``, chat's copy of the venue's
users (role, active)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from chat.conversations.domain import Conversation, UserCopy
from gala.identity import venue_scoped
from gala.projections import keep_newest
from gala.store import Document, Index, Store

COLLECTION = "conversations"
USERS = "users"
ASSIGNED_AS_OF = "assignedAsOf"
INDEXES: Sequence[Index] = (Index(COLLECTION, [("venueId", ASCENDING), ("clientIds", ASCENDING)]),)


def _conversation(d: Mapping[str, Any]) -> Conversation:
    return Conversation(
        project_id=d["_id"],
        venue_id=d["venueId"],
        name=d.get("name"),
        contact_id=d.get("contactId"),
        client_ids=tuple(d.get("clientIds") or ()),
        assignees=dict(d.get("assignees") or {}),
        last_seq=int(d.get("lastSeq") or 0),
    )


class ConversationRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def _conversations(self) -> AsyncCollection[Document]:
        return self._store[COLLECTION]

    async def get(self, venue_id: str, project_id: str) -> Conversation | None:
        d = await self._conversations.find_one(venue_scoped(venue_id, {"_id": project_id}))
        return _conversation(d) if d is not None else None

    async def of_venue(self, venue_id: str) -> list[Conversation]:
        return [_conversation(d) async for d in self._conversations.find(venue_scoped(venue_id))]

    async def keep_project(
        self,
        venue_id: str,
        project_id: str,
        *,
        name: str,
        contact_id: str | None,
        client_ids: list[str],
        as_of: datetime,
    ) -> bool:
        state = {"name": name, "contactId": contact_id, "clientIds": sorted(set(client_ids))}
        return await keep_newest(self._conversations, project_id, venue_id, state, as_of)

    async def keep_assignee(
        self,
        venue_id: str,
        project_id: str,
        task_id: str,
        user_id: str | None,
        *,
        as_of: datetime,
    ) -> bool:
        """Who a task of the project is assigned to (``None``: nobody, or deleted), unless
        the copy holds a newer event of that task; ``True`` if it was written.

        Each task keeps the time of its newest event beside its assignee
        (``assignedAsOf.<task>``), so a late or redelivered older event (an assignment
        the task has since lost, or one from before its deletion) changes nothing."""
        field, when = f"assignees.{task_id}", f"{ASSIGNED_AS_OF}.{task_id}"
        update: Document = {"$set": {when: as_of, "venueId": venue_id}}
        if user_id:
            update["$set"][field] = user_id
        else:
            update["$unset"] = {field: ""}
        query: Document = {
            "_id": project_id,
            "venueId": venue_id,
            "$or": [{when: {"$lte": as_of}}, {when: None}],
        }
        try:
            result = await self._conversations.update_one(query, update, upsert=True)
        except DuplicateKeyError:
            return False  # the copy holds a newer event of this task
        return result.matched_count == 1 or result.upserted_id is not None

    async def next_seq(self, venue_id: str, project_id: str) -> int:
        """The next number of the project's messages (taken, never reused)."""
        d = await self._conversations.find_one_and_update(
            {"_id": project_id, "venueId": venue_id},
            {"$inc": {"lastSeq": 1}},
            return_document=ReturnDocument.AFTER,
        )
        if d is None:
            raise LookupError(project_id)
        return int(d["lastSeq"])


class UserCopyRepository:
    """The venue's users as their events describe them (``users``): whether one is still
    active (a deactivated user takes part in no conversation, whatever their token says)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def keep(
        self, venue_id: str, user_id: str, *, role: str, active: bool, as_of: datetime
    ) -> bool:
        state = {"role": role, "active": active}
        return await keep_newest(self._store[USERS], user_id, venue_id, state, as_of)

    async def get(self, venue_id: str, user_id: str) -> UserCopy | None:
        d = await self._store[USERS].find_one(venue_scoped(venue_id, {"_id": user_id}))
        return _user(d) if d is not None else None

    async def of_users(self, venue_id: str, user_ids: Iterable[str]) -> dict[str, UserCopy]:
        """The copies of these users that chat has (a user it read nothing about is absent)."""
        wanted = sorted(set(user_ids))
        if not wanted:
            return {}
        if len(wanted) == 1:
            one = await self.get(venue_id, wanted[0])
            return {one.user_id: one} if one is not None else {}
        found = self._store[USERS].find(venue_scoped(venue_id, {"_id": {"$in": wanted}}))
        return {d["_id"]: _user(d) async for d in found}


def _user(d: Mapping[str, Any]) -> UserCopy:
    return UserCopy(
        user_id=d["_id"],
        venue_id=d["venueId"],
        role=str(d.get("role") or ""),
        active=bool(d.get("active", True)),
    )
