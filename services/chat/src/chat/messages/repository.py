"""The only module that speaks to the store about messages (``messages``, their pending
event inside: a message is durable before anyone receives it) and read markers."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from pymongo import ASCENDING, DESCENDING

from chat.messages.domain import Message
from gala.aggregates import READ_FIELDS, AggregateRepository, Codec
from gala.contracts.chat import MessageType
from gala.events.model import Event
from gala.identity import Role, venue_scoped
from gala.store import Document, Index, PageRequest
from gala.values import required_utc

COLLECTION = "messages"
READ_MARKERS = "read_markers"
INDEXES: Sequence[Index] = (
    Index(COLLECTION, [("venueId", 1), ("projectId", 1), ("seq", 1)], unique=True),
    # the history's page: its order (newest first) and the id find_page adds as the tie-break
    Index(COLLECTION, [("venueId", 1), ("projectId", 1), ("seq", 1), ("_id", 1)]),
)
NEWEST_FIRST: Sequence[tuple[str, int]] = [("seq", DESCENDING)]


def to_document(m: Message) -> Document:
    return {
        "_id": m.id,
        "venueId": m.venue_id,
        "projectId": m.project_id,
        "seq": m.seq,
        "senderId": m.sender_id,
        "senderRole": m.sender_role.value if m.sender_role else None,
        "type": m.message_type.value,
        "content": m.content,
        "metadata": None if m.metadata is None else json.dumps(m.metadata),
        "contactId": m.contact_id,
        "createdAt": m.created_at,
    }


def from_document(d: Mapping[str, Any]) -> Message:
    metadata = d.get("metadata")
    role = d.get("senderRole")
    return Message(
        id=d["_id"],
        project_id=d["projectId"],
        venue_id=d["venueId"],
        seq=int(d["seq"]),
        sender_id=d["senderId"],
        sender_role=Role(role) if role else None,
        message_type=MessageType(d["type"]),
        content=d["content"],
        metadata=None if metadata is None else json.loads(metadata),
        contact_id=d.get("contactId"),
        created_at=required_utc(d["createdAt"]),
    )


class MessageRepository(AggregateRepository[Message]):
    COLLECTION = COLLECTION
    codec = Codec(to_document, from_document)

    def partition_key(self, aggregate: Message, event: Event) -> str | None:
        """A conversation's messages share a partition: every replica reads them in order."""
        return aggregate.project_id

    async def history(
        self, venue_id: str, project_id: str, limit: int, cursor: str | None
    ) -> tuple[list[Message], str | None]:
        """Newest first, a page at a time."""
        query = venue_scoped(venue_id, {"projectId": project_id})
        return await self.find_page(query, PageRequest(NEWEST_FIRST, limit, cursor))

    async def after(self, venue_id: str, project_id: str, seq: int, limit: int) -> list[Message]:
        """What came after ``seq``, in order (a client resuming)."""
        query = venue_scoped(venue_id, {"projectId": project_id, "seq": {"$gt": seq}})
        cursor = self.collection.find(query, READ_FIELDS).sort("seq", ASCENDING).limit(limit)
        return [from_document(d) async for d in cursor]

    async def exists(self, message_id: str) -> bool:
        return await self.collection.find_one({"_id": message_id}, {"_id": 1}) is not None

    async def count_unread(
        self, venue_id: str, project_id: str, after_seq: int, reader_id: str
    ) -> int:
        query = venue_scoped(
            venue_id,
            {"projectId": project_id, "seq": {"$gt": after_seq}, "senderId": {"$ne": reader_id}},
        )
        return await self.collection.count_documents(query)

    # --- read markers -------------------------------------------------------------------

    async def mark_read(self, venue_id: str, project_id: str, user_id: str, seq: int) -> int:
        """Move the user's read marker forward to ``seq`` (never back); answers it."""
        key = f"{project_id}|{user_id}"
        markers = self._store[READ_MARKERS]
        await markers.update_one(
            {"_id": key},
            {"$max": {"seq": seq}, "$set": {"venueId": venue_id, "projectId": project_id}},
            upsert=True,
        )
        marker = await markers.find_one({"_id": key})
        return int(marker["seq"]) if marker else seq

    async def read_up_to(self, project_id: str, user_id: str) -> int:
        marker = await self._store[READ_MARKERS].find_one({"_id": f"{project_id}|{user_id}"})
        return int(marker["seq"]) if marker else 0
