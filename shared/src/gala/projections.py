"""Copies of other services' records, kept from their events (projections).

A service keeps what it needs of another service's records (a contact's name, a user's
role) from the events that carry them, so it never calls that service. Events of one
record can arrive late or twice: a copy keeps the newest state by event time, and a
guard (e.g. "not erased") can make a state final. A batch of events of many records
(an import's) is written in one bulk write (``keep_newest_many``, for a batch handler:
``Subscriptions.on_batch``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, DuplicateKeyError

from gala.store import Document

AS_OF = "asOf"


class Versioned(Protocol):
    """A record's copy as of an event: what deciding which copy wins needs."""

    @property
    def id(self) -> str: ...
    @property
    def venue_id(self) -> str: ...
    @property
    def as_of(self) -> datetime: ...


V = TypeVar("V", bound=Versioned)


def newest_copies(copies: Iterable[V]) -> dict[str, V]:
    """Of several copies of one record, the one :func:`keep_newest_many` writes: the
    newest, the later of equally new ones (a copy of another venue's record never wins)."""
    newest: dict[str, V] = {}
    for copy in copies:
        kept = newest.get(copy.id)
        if kept is None or (kept.venue_id == copy.venue_id and copy.as_of >= kept.as_of):
            newest[copy.id] = copy
    return newest


def replaces(copy: Versioned, stored: Versioned | None, *, final: bool = False) -> bool:
    """Whether writing ``copy`` over ``stored`` (what the store held before) changes it,
    as :func:`keep_newest` decides: nothing stored, or a copy of the same venue's record
    that is not newer and not ``final`` (e.g. erased)."""
    return stored is None or (
        stored.venue_id == copy.venue_id and not final and stored.as_of <= copy.as_of
    )


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


@dataclass(frozen=True)
class Copy:
    """One record's state as of an event, for :func:`keep_newest_many`."""

    doc_id: str
    venue_id: str
    state: Mapping[str, Any]
    as_of: datetime
    guard: Mapping[str, Any] | None = None

    @property
    def id(self) -> str:
        return self.doc_id


async def keep_newest_many(collection: AsyncCollection[Document], copies: Sequence[Copy]) -> int:
    """:func:`keep_newest` for many copies: one read of which records exist, then one
    unordered bulk write of conditional updates for those, and one unordered insert of
    the records not there yet (what an upsert would insert; far cheaper than upserts on
    some stores); the same result as writing them one by one in their order (of several
    copies of one record only the newest is written, the later of equally new ones).
    Answers how many were written (matched or inserted).

    A record that appears meanwhile (a concurrent writer) fails its insert: then the
    copies are written one by one. (Upserts are never sent for records that exist: a bulk
    write's duplicate-key errors are not reported reliably by every store.)"""
    newest = newest_copies(copies)
    if not newest:
        return 0
    found = collection.find({"_id": {"$in": list(newest)}}, {"_id": 1})
    existing = {document["_id"] async for document in found}
    updates: list[UpdateOne] = []
    inserts: list[Document] = []
    for copy in newest.values():
        document = None if copy.doc_id in existing else _inserted(copy)
        if document is not None:
            inserts.append(document)
        else:
            updates.append(
                UpdateOne(
                    _newer_than_stored(copy),
                    {"$set": {**copy.state, "venueId": copy.venue_id, AS_OF: copy.as_of}},
                    upsert=copy.doc_id not in existing,
                )
            )
    written = 0
    try:
        if updates:
            result = await collection.bulk_write(updates, ordered=False)
            written += result.matched_count + result.upserted_count
        if inserts:
            written += len((await collection.insert_many(inserts, ordered=False)).inserted_ids)
    except (BulkWriteError, KeyError):  # KeyError: a store's incomplete error answer
        written = 0
        for copy in newest.values():
            written += await keep_newest(
                collection, copy.doc_id, copy.venue_id, copy.state, copy.as_of, copy.guard
            )
    return written


def _inserted(copy: Copy) -> Document | None:
    """The document an upsert of ``copy`` inserts where nothing is stored: its id, venue,
    the guard's equalities, its state and time; ``None`` for a guard of other conditions
    (then the upsert itself is sent)."""
    guard = dict(copy.guard or {})
    if any(
        key.startswith("$") or "." in key or isinstance(value, Mapping)
        for key, value in guard.items()
    ):
        return None
    return {
        "_id": copy.doc_id,
        **guard,
        **copy.state,
        "venueId": copy.venue_id,
        AS_OF: copy.as_of,
    }


def _newer_than_stored(copy: Copy) -> Document:
    return {
        "_id": copy.doc_id,
        "venueId": copy.venue_id,
        "$or": [{AS_OF: {"$lte": copy.as_of}}, {AS_OF: None}],
        **(copy.guard or {}),
    }
