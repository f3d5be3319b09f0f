"""Storing aggregates: one document per aggregate, its pending events inside it.

An aggregate (a contact, an opportunity, a project) is changed in memory by its domain
methods, which record the events they cause; its repository writes the new state and
those events in one document write (the outbox relay publishes them), and only onto
the version it was read at. A service's repository subclasses ``AggregateRepository``
and adds the queries its use cases need::

    class ProjectRepository(AggregateRepository[Project]):
        COLLECTION = "projects"
        codec = Codec(to_document, from_document)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, DuplicateKeyError

from gala.events.model import Event
from gala.events.outbox import LEASE, OUTBOX, PENDING, Outbox
from gala.identity import venue_scoped
from gala.store import (
    Document,
    Page,
    PageRequest,
    Store,
    duplicate_key_errors,
    explain_page,
    find_page,
)

READ_FIELDS: Mapping[str, int] = {OUTBOX: 0, PENDING: 0, LEASE: 0}
"""What a read leaves out: the aggregate's pending events."""

Within = Callable[[], AbstractContextManager[None]]
"""The context an aggregate's events are recorded in (e.g. the correlation and causation
of the event that made it, for a batch handler's aggregates: ``EventContext.bound``)."""


class Aggregate(Protocol):
    id: str
    venue_id: str
    version: int

    def collect_events(self) -> Sequence[Event]: ...


A = TypeVar("A", bound=Aggregate)


@dataclass(frozen=True)
class Codec(Generic[A]):
    """How an aggregate becomes its document, and back."""

    to_document: Callable[[A], Document]
    from_document: Callable[[Mapping[str, Any]], A]


class AggregateRepository(Generic[A]):
    COLLECTION: ClassVar[str]
    codec: Codec[A]

    def __init__(self, store: Store, outbox: Outbox) -> None:
        self._store = store
        self._outbox = outbox

    def subject(self, aggregate: A, event: Event) -> str:
        """The subject (and, by default, Kafka key) of an event the aggregate recorded."""
        return aggregate.id

    def partition_key(self, aggregate: A, event: Event) -> str | None:
        """A Kafka key other than the subject (events with one key stay in order)."""
        return None

    @property
    def collection(self) -> AsyncCollection[Document]:
        return self._store[self.COLLECTION]

    def entries(self, aggregate: A) -> list[Document]:
        """The aggregate's recorded events as outbox entries (collecting them)."""
        return [
            self._outbox.entry(
                event,
                subject=self.subject(aggregate, event),
                venue_id=aggregate.venue_id,
                partition_key=self.partition_key(aggregate, event),
            )
            for event in aggregate.collect_events()
        ]

    async def insert(self, aggregate: A) -> None:
        """Insert a new aggregate with its events (DuplicateKeyError if its id exists)."""
        await self._outbox.insert(
            self.collection, self.codec.to_document(aggregate), self.entries(aggregate)
        )

    async def insert_new(self, aggregates: Sequence[tuple[A, Within]]) -> list[A]:
        """Insert new aggregates with their events in one unordered insert, each one's
        events recorded within its own context; an aggregate whose id exists already
        (made meanwhile) is skipped. Answers the aggregates inserted."""
        documents = []
        for aggregate, within in aggregates:
            with within():
                documents.append((self.codec.to_document(aggregate), self.entries(aggregate)))
        try:
            await self._outbox.insert_many(self.collection, documents, ordered=False)
        except BulkWriteError as exc:
            if duplicate_key_errors(exc) is None:
                raise
            # Not every store goes on past a duplicate in an unordered insert: one by one.
            inserted = []
            for (aggregate, _), (document, entries) in zip(aggregates, documents, strict=True):
                with contextlib.suppress(DuplicateKeyError):
                    await self._outbox.insert(self.collection, document, entries)
                    inserted.append(aggregate)
            return inserted
        return [aggregate for aggregate, _ in aggregates]

    async def ids_existing(self, venue_id: str, ids: Sequence[str]) -> set[str]:
        """Which of these aggregates of the venue exist."""
        found = self.collection.find(
            venue_scoped(venue_id, {"_id": {"$in": list(ids)}}), {"_id": 1}
        )
        return {document["_id"] async for document in found}

    async def save(self, aggregate: A) -> bool:
        """Write state and events unless someone saved since it was read (then ``False``)."""
        saved = await self._outbox.save_versioned(
            self.collection,
            self.codec.to_document(aggregate),
            self.entries(aggregate),
            venue_id=aggregate.venue_id,
            version=aggregate.version,
        )
        if saved:
            aggregate.version += 1
        return saved

    async def get(self, venue_id: str, aggregate_id: str) -> A | None:
        return await self.find_one(venue_scoped(venue_id, {"_id": aggregate_id}))

    async def find_one(self, query: Mapping[str, Any]) -> A | None:
        document = await self.collection.find_one(dict(query), READ_FIELDS)
        return self.codec.from_document(document) if document is not None else None

    async def find_page(self, query: Document, request: PageRequest) -> tuple[list[A], str | None]:
        page: Page = await find_page(self.collection, query, request, READ_FIELDS)
        return [self.codec.from_document(d) for d in page.items], page.next_cursor

    async def explain_page(self, query: Document, request: PageRequest) -> Document:
        """The store's plan for :meth:`find_page` (tests prove listings use an index)."""
        return await explain_page(self.collection, query, request)
