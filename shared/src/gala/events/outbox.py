"""The transactional outbox, without multi-document transactions.

A state change and the events that announce it are written in *one* document write:
the pending events ride inside the aggregate's own document (``_outbox``), so the
store's single-document atomicity keeps them together. The relay publishes them and
removes them once Kafka has acknowledged. It wakes right after each local write (low
latency) and also polls (a safety net for writes whose process died before relaying,
in this replica or another). A lease in the document stops two replicas from relaying
the same document at once.

Delivery is at-least-once: a crash after publishing and before removal publishes the
event again with the same id, and consumers de-duplicate by id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ReturnDocument, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.results import UpdateResult

from gala import context, metrics
from gala.events.bus import EnvelopePublisher
from gala.events.envelope import Envelope
from gala.events.model import Event
from gala.store import Document, Index, Store
from gala.tracing import current_traceparent
from gala.values import utc_millis

log = logging.getLogger(__name__)

OUTBOX = "_outbox"
PENDING = "_outboxPending"
LEASE = "_outboxLease"
EVENT_ID_NAMESPACE = uuid.UUID("6f1c7f0e-3a4b-4f53-9a51-9c0e6a7c2b10")


def outbox_index(collection: str) -> Index:
    return Index(collection, [(PENDING, 1)], name="outbox_pending")


class Outbox:
    """Records events in the same write as the state change that caused them."""

    def __init__(self, service: str, relay: OutboxRelay | None = None) -> None:
        self.source = f"/gala/{service}"
        self.relay = relay

    def entry(
        self,
        event: Event,
        *,
        subject: str,
        venue_id: str | None,
        event_id: str | None = None,
        partition_key: str | None = None,
    ) -> Document:
        """A pending event, stamped with the current trace, correlation and causation.

        Inside an event handler the id derives from the event being handled, so a
        handler that runs again after a crash records the same id and consumers
        downstream de-duplicate it.
        """
        causation = context.causation_id.get()
        if event_id is None:
            if causation:
                name = f"{causation}|{event.TYPE}|{subject}"
                event_id = str(uuid.uuid5(EVENT_ID_NAMESPACE, name))
            else:
                event_id = str(uuid.uuid4())
        return {
            "id": event_id,
            "topic": event.TOPIC,
            "type": event.TYPE,
            "source": self.source,
            "subject": subject,
            "partitionKey": partition_key,
            "time": datetime.now(UTC),
            "venueid": venue_id,
            "traceparent": current_traceparent(),
            "correlationid": context.correlation_id.get() or event_id,
            "causationid": causation,
            # A JSON string, not a sub-document: payload keys are not restricted.
            "data": event.to_json().decode(),
        }

    def entries(
        self, events: Sequence[Event], *, subject: str, venue_id: str | None
    ) -> list[Document]:
        """Pending entries for an aggregate's events, in the order they happened."""
        return [self.entry(event, subject=subject, venue_id=venue_id) for event in events]

    def with_events(self, update: Mapping[str, Any], entries: Sequence[Document]) -> Document:
        """Add ``entries`` to an update document."""
        merged: Document = {op: dict(fields) for op, fields in update.items()}
        if not entries:
            return merged
        merged.setdefault("$push", {})[OUTBOX] = {"$each": list(entries)}
        merged.setdefault("$set", {})[PENDING] = True
        return merged

    async def insert(
        self, collection: AsyncCollection[Document], document: Document, entries: Sequence[Document]
    ) -> None:
        await collection.insert_one({**document, OUTBOX: list(entries), PENDING: bool(entries)})
        self._written(collection, document.get("_id"), entries)

    async def insert_many(
        self,
        collection: AsyncCollection[Document],
        documents: Sequence[tuple[Document, Sequence[Document]]],
        *,
        ordered: bool = True,
    ) -> None:
        """Insert many documents, each with its own events (a bulk write's errors raise)."""
        if not documents:
            return
        try:
            await collection.insert_many(
                [
                    {**document, OUTBOX: list(entries), PENDING: bool(entries)}
                    for document, entries in documents
                ],
                ordered=ordered,
            )
        finally:
            for document, entries in documents:
                self._written(collection, document.get("_id"), entries)

    async def update(
        self,
        collection: AsyncCollection[Document],
        query: Mapping[str, Any],
        update: Mapping[str, Any],
        entries: Sequence[Document],
        *,
        upsert: bool = False,
    ) -> UpdateResult:
        result = await collection.update_one(
            dict(query), self.with_events(update, entries), upsert=upsert
        )
        self._written(collection, result.upserted_id or _plain_id(query), entries)
        return result

    async def save_versioned(
        self,
        collection: AsyncCollection[Document],
        state: Document,
        entries: Sequence[Document],
        *,
        venue_id: str,
        version: int,
    ) -> bool:
        """Write an aggregate's state (with ``_id``) and its events, only if its stored
        ``version`` is still the one it was read at; the stored version becomes
        ``version + 1``. ``False`` (and nothing written) when someone saved meanwhile."""
        fields = {key: value for key, value in state.items() if key != "_id"}
        fields["version"] = version + 1
        result = await self.update(
            collection,
            {"_id": state["_id"], "venueId": venue_id, "version": version},
            {"$set": fields},
            entries,
        )
        return result.matched_count == 1

    async def find_one_and_update(
        self,
        collection: AsyncCollection[Document],
        query: Mapping[str, Any],
        update: Mapping[str, Any],
        entries: Sequence[Document],
        *,
        upsert: bool = False,
    ) -> Document | None:
        """Apply the update and answer the document as it is afterwards."""
        document = await collection.find_one_and_update(
            dict(query),
            self.with_events(update, entries),
            upsert=upsert,
            return_document=ReturnDocument.AFTER,
        )
        self._written(collection, document["_id"] if document else None, entries)
        return document

    def _written(
        self, collection: AsyncCollection[Document], doc_id: Any, entries: Sequence[Document]
    ) -> None:
        if self.relay is not None and entries:
            self.relay.wake(collection.name, doc_id)


def _plain_id(query: Mapping[str, Any]) -> Any:
    """The ``_id`` a query names outright, if it does."""
    value = query.get("_id")
    return None if isinstance(value, dict) else value


def envelope_of(entry: Mapping[str, Any]) -> Envelope:
    time = entry["time"]
    if isinstance(time, datetime) and time.tzinfo is None:
        time = time.replace(tzinfo=UTC)
    return Envelope(
        id=entry["id"],
        type=entry["type"],
        source=entry["source"],
        subject=entry["subject"],
        partition_key=entry.get("partitionKey"),
        time=time,
        data=entry["data"].encode(),
        venueid=entry.get("venueid"),
        traceparent=entry.get("traceparent"),
        correlationid=entry.get("correlationid"),
        causationid=entry.get("causationid"),
    )


class OutboxRelay:
    """Publishes pending events from a service's collections, in order per document.

    Two paths: the documents this process just wrote (it knows their ids) are relayed at
    once, each found by ``_id``; a sweep over every pending document runs at start-up
    and then every ``poll_interval`` as the safety net for writes whose process died
    before relaying. (The sweep reads the ``outbox_pending`` index; it still touches
    every collection, so it runs rarely.)
    """

    def __init__(
        self,
        store: Store,
        publisher: EnvelopePublisher,
        collections: Sequence[str],
        *,
        service: str,
        poll_interval: float = 5.0,
        lease_seconds: float = 30.0,
        concurrency: int = 8,
    ) -> None:
        self._service = service
        self._store = store
        self._publisher = publisher
        self._collections = list(collections)
        self._poll_interval = poll_interval
        self._lease = timedelta(seconds=lease_seconds)
        self._slots = asyncio.Semaphore(concurrency)
        self._batch = concurrency * 8
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._wakeup = asyncio.Event()
        self._hints: dict[str, set[Any]] = {}
        self._sweep_due = True
        self._last_sweep = float("-inf")
        self._task: asyncio.Task[None] | None = None

    @property
    def indexes(self) -> list[Index]:
        return [outbox_index(name) for name in self._collections]

    def wake(self, collection: str | None = None, doc_id: Any = None) -> None:
        """A local write left events in ``collection``'s document ``doc_id``."""
        if collection is not None and doc_id is not None:
            self._hints.setdefault(collection, set()).add(doc_id)
        else:
            self._sweep_due = True
        self._wakeup.set()

    def start(self) -> None:
        if self._task is None and self._collections:
            self._task = asyncio.create_task(self._run(), name="gala-outbox-relay")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            self._wakeup.clear()
            try:
                await self.relay_hinted()
                if self._sweep_due or time.monotonic() - self._last_sweep >= self._poll_interval:
                    await self.drain()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox relay failed; retrying after the poll interval")
                self._sweep_due = True
                await asyncio.sleep(min(self._poll_interval, 1.0))
            until_sweep = self._poll_interval - (time.monotonic() - self._last_sweep)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), max(until_sweep, 0.01))

    async def relay_hinted(self) -> int:
        """Publish the events of the documents this process just wrote."""
        hints, self._hints = self._hints, {}
        published = 0
        for name, ids in hints.items():
            published += await self._relay_ids(self._store[name], list(ids))
        return published

    async def drain(self) -> int:
        """Sweep: publish everything pending now; answers how many events went out."""
        self._sweep_due = False
        self._last_sweep = time.monotonic()
        published = 0
        for name in self._collections:
            collection = self._store[name]
            while True:
                found = collection.find({PENDING: True}, {"_id": 1}).limit(self._batch)
                ids = [document["_id"] async for document in found]
                if not ids:
                    break
                claimed, count = await self._relay_claimed(collection, ids)
                published += count
                if not claimed:
                    break  # the rest is leased by other replicas
        return published

    async def measure(self, sample: int = 1000) -> tuple[dict[str, int], float]:
        """Pending documents per collection and the age of the oldest pending event (of
        at most ``sample`` pending documents per collection, through the pending index),
        also set as the outbox gauges."""
        now = datetime.now(UTC)
        pending: dict[str, int] = {}
        oldest = now
        for name in self._collections:
            collection = self._store[name]
            pending[name] = await collection.count_documents({PENDING: True})
            found = collection.find({PENDING: True}, {f"{OUTBOX}.time": 1}).limit(sample)
            async for document in found:
                for entry in document.get(OUTBOX) or []:
                    moment = entry.get("time")
                    if isinstance(moment, datetime):
                        oldest = min(oldest, utc_millis(moment))
        age = (now - oldest).total_seconds()
        metrics.set_outbox(self._service, pending, age)
        return pending, age

    async def _relay_ids(self, collection: AsyncCollection[Document], ids: list[Any]) -> int:
        published = 0
        for start in range(0, len(ids), self._batch):
            _, count = await self._relay_claimed(collection, ids[start : start + self._batch])
            published += count
        return published

    async def _relay_claimed(
        self, collection: AsyncCollection[Document], ids: list[Any]
    ) -> tuple[int, int]:
        """Claim the documents (skipping those leased elsewhere) and relay them: three
        store round trips for the whole batch (claim, read, finish), or five when some
        events were not sent or new ones were appended meanwhile (claim, read, finish,
        remove, clear); the events of each document published in order, documents
        concurrently."""
        documents = await self._claim(collection, ids)
        if not documents:
            return 0, 0

        async def one(document: Document) -> list[Document]:
            async with self._slots:
                return await self._publish_document(document)

        results = await asyncio.gather(*(one(d) for d in documents), return_exceptions=True)
        sent = {
            d["_id"]: result
            for d, result in zip(documents, results, strict=True)
            if not isinstance(result, BaseException)
        }
        sent.update(
            (d["_id"], result.sent)
            for d, result in zip(documents, results, strict=True)
            if isinstance(result, _PartlySent)
        )
        if await self._finish(collection, documents, sent):
            return len(documents), sum(len(entries) for entries in sent.values())
        # Remove what went out and release the leases, even when a publish failed, so
        # the rest is retried promptly (by this replica or another).
        removals: list[UpdateOne] = []
        for document in documents:
            update: Document = {"$unset": {LEASE: ""}}
            if sent.get(document["_id"]):
                # Exact elements as read: FerretDB's $pull matches whole elements only.
                update["$pullAll"] = {OUTBOX: sent[document["_id"]]}
            removals.append(UpdateOne({"_id": document["_id"]}, update))
        await collection.bulk_write(removals, ordered=False)
        # A write may have appended new entries meanwhile: clear the flag only if empty.
        await collection.update_many(
            {"_id": {"$in": [d["_id"] for d in documents]}, OUTBOX: {"$size": 0}},
            {"$unset": {PENDING: ""}},
        )
        for result in results:
            if isinstance(result, _PartlySent):
                raise result.error
            if isinstance(result, BaseException):
                raise result
        return len(documents), sum(len(entries) for entries in sent.values())

    async def _finish(
        self,
        collection: AsyncCollection[Document],
        documents: list[Document],
        sent: dict[Any, list[Document]],
    ) -> bool:
        """The usual end of a relay, in one write per document: every event read went
        out, and nothing was appended since (the outbox holds as many entries as were
        read, under this claim: only the claim's holder removes entries, so they are the
        ones read), so the outbox is emptied and the flag and lease cleared at once.
        ``False`` if that is not so for every document (then the caller removes exactly
        the entries sent, which is also right for the documents finished here)."""
        if any(len(sent.get(d["_id"]) or []) != len(d.get(OUTBOX) or []) for d in documents):
            return False
        result = await collection.bulk_write(
            [
                UpdateOne(
                    {
                        "_id": d["_id"],
                        f"{LEASE}.claim": d[LEASE]["claim"],
                        OUTBOX: {"$size": len(d[OUTBOX])},
                    },
                    {"$set": {OUTBOX: []}, "$unset": {PENDING: "", LEASE: ""}},
                )
                for d in documents
            ],
            ordered=False,
        )
        return bool(result.matched_count == len(documents))

    async def _claim(self, collection: AsyncCollection[Document], ids: list[Any]) -> list[Document]:
        """Lease the pending documents of ``ids`` that no one else holds; answers them."""
        now = datetime.now(UTC)
        claim = uuid.uuid4().hex
        await collection.update_many(
            {
                "_id": {"$in": ids},
                PENDING: True,
                "$or": [{LEASE: {"$exists": False}}, {f"{LEASE}.until": {"$lt": now}}],
            },
            {"$set": {LEASE: {"owner": self._owner, "until": now + self._lease, "claim": claim}}},
        )
        found = collection.find({"_id": {"$in": ids}, f"{LEASE}.claim": claim})
        return [document async for document in found]

    async def _publish_document(self, doc: Document) -> list[Document]:
        """Publish a document's events in order; the ones sent (``_PartlySent`` if one
        failed)."""
        entries: list[Document] = doc.get(OUTBOX) or []
        sent: list[Document] = []
        for entry in entries:
            try:
                await self._publisher.publish(entry["topic"], envelope_of(entry))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                metrics.OUTBOX_FAILURES.labels(self._service).inc()
                raise _PartlySent(sent, exc) from exc
            metrics.OUTBOX_PUBLISHED.labels(self._service).inc()
            sent.append(entry)
        return sent


class _PartlySent(Exception):
    def __init__(self, sent: list[Document], error: Exception) -> None:
        super().__init__(str(error))
        self.sent = sent
        self.error = error
