"""The idempotent consumer: at-least-once in, effects once, nothing lost.

The consumer takes the records in batches (up to ``batch_size``) and handles the
partitions of a batch concurrently, each one's records strictly in partition order:

1. read each record's CloudEvents envelope and validate the payload (a malformed
   message is poison: straight to the dead-letter topic, no retries, at its place in
   the order; the others of the batch are handled);
2. look up the processed-event records of the whole batch in one query; for each
   handler subscribed to a record's type, skip it if it already ran, else run it with
   bounded retries and exponential backoff; a handler that still fails goes to the
   dead-letter topic with its error. A batch handler (``Subscriptions.on_batch``) gets
   each run of consecutive events of its partition that only it has left to handle,
   in one call (a projection writes them in one bulk write); when the whole run keeps
   failing it is handled one event at a time, so only the failing events are
   dead-lettered;
3. record the handlers that ran in one unordered insert, and only then commit each
   partition's offset (its highest handled offset + 1), once per batch, so a crash at
   any point redelivers everything not committed. On shutdown (SIGTERM) a partition
   stops before its next event, and what it finished is recorded and committed; a
   handler cancelled at shutdown commits nothing of its event. If the store fails
   mid-batch, the partition is rewound to its first uncommitted record.

Handlers must make their effects idempotent by themselves as well (deterministic ids,
upserts): the processed records are written after the effects, so a crash between the
two runs the handlers of the batch's handled events again.

The consumer also reads the service's redrive topic (``gala.<service>.redrive``), where
``gala ops`` puts redriven dead letters and replayed events. Such a record names the one
consumer group it is for (``gala_redrive_group``; other groups skip it) and where the
event first was (``gala_origin_*``), and is handled exactly like the original: a redrive
still skips the handlers that already ran; a replay (``gala_replay``, the replay's id)
runs them again, once per replay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Literal, TypeAlias, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, Topic
from faststream.kafka.annotations import KafkaMessage as InjectedMessage
from faststream.kafka.message import KafkaMessage
from faststream.kafka.subscriber.usecase import LogicSubscriber
from opentelemetry import trace
from pydantic import ValidationError
from pymongo.errors import BulkWriteError, DuplicateKeyError

from gala import context, metrics
from gala.events.bus import EnvelopePublisher
from gala.events.envelope import Envelope, MalformedEnvelope
from gala.events.model import Event, UnknownEventType, registry
from gala.events.outbox import Outbox
from gala.events.topics import consumer_group, dead_letter_topic, redrive_topic
from gala.settings import Settings
from gala.store import Document, Index, Store, duplicate_key_errors
from gala.tracing import context_from_traceparent, tracer

log = logging.getLogger(__name__)

PROCESSED = "processed_events"
PROCESSED_INDEX = Index(PROCESSED, [("processedAt", 1)], name="processed_at")
E = TypeVar("E", bound=Event)

BATCH_SIZE = 500
"""Records taken from the broker at once (over all partitions) by default."""
IDLE_WAIT_MS = 20
"""How long a fetch waits for records when none are there (FastStream's batch subscriber
then sleeps as long again): the latency an event arriving on an idle consumer may wait.
FastStream's default, 200 ms, cost up to 0.4 s per hop of a journey."""
CHECKPOINT_SECONDS = 1.0
"""A partition whose part of a batch takes longer records and commits what it handled
this often (slow handlers redo at most this much work after a crash)."""

# Headers of the records on a redrive topic (``gala ops dlq redrive`` and ``replay``).
REDRIVE_GROUP = "gala_redrive_group"
"""The one consumer group the record is for."""
REPLAY = "gala_replay"
"""A replay's id: run the handlers even if they already processed the event."""
ORIGIN_TOPIC, ORIGIN_PARTITION, ORIGIN_OFFSET = (
    "gala_origin_topic",
    "gala_origin_partition",
    "gala_origin_offset",
)
DEAD_LETTER_HEADER_PREFIX = "gala_dlq_"


class PermanentError(Exception):
    """A handler failure that retrying cannot fix: dead-letter at once."""


@dataclass(frozen=True)
class EventContext:
    """What a handler gets besides the event: where it came from and the service's parts."""

    envelope: Envelope
    topic: str
    partition: int
    offset: int
    store: Store
    outbox: Outbox
    settings: Settings
    """The service's own settings (its settings class)."""

    @property
    def venue_id(self) -> str | None:
        return self.envelope.venueid

    def bound(self) -> contextlib.AbstractContextManager[None]:
        """The event's correlation and causation, bound as while its handler runs: what
        a batch handler records each event's effects within."""
        envelope = self.envelope
        return context.bound(
            correlation=envelope.correlationid or envelope.id, causation=envelope.id
        )


Handler = Callable[[E, EventContext], Awaitable[None]]
BatchHandler = Callable[[Sequence[tuple[E, EventContext]]], Awaitable[None]]
"""Gets consecutive events of one partition, in order, each with its context."""


@dataclass(frozen=True)
class Subscription(Generic[E]):
    name: str
    event_type: type[E]
    handler: Handler[E]
    """One event at a time (for a batch subscription: a batch of one)."""
    batch: BatchHandler[E] | None = None
    """Consecutive events of a partition at once, for a batch subscription."""


@dataclass
class Subscriptions:
    """Every event a service reacts to, declared in one place (its subscriptions.py)."""

    _by_type: dict[str, list[Subscription[Any]]] = field(default_factory=dict)

    def on(
        self, event_type: type[E], *, name: str | None = None
    ) -> Callable[[Handler[E]], Handler[E]]:
        def register(handler: Handler[E]) -> Handler[E]:
            handler_name = name or f"{handler.__module__}.{handler.__qualname__}"
            self._add(Subscription(handler_name, event_type, handler))
            return handler

        return register

    def on_batch(
        self, *event_types: type[E], name: str | None = None
    ) -> Callable[[BatchHandler[E]], BatchHandler[E]]:
        """Subscribe a batch handler to ``event_types``: it gets each run of consecutive
        events of a partition (of these types) that no other handler has left to handle,
        in order, in one call. It must give the same result as handling them one by one
        (e.g. a projection's bulk write of conditional upserts, newest kept), and be
        idempotent: a call that fails is followed by one call per event of the run.
        It runs outside any one event's trace and causation: events it records need
        their own event's ids bound (``EventContext.bound``)."""

        def register(handler: BatchHandler[E]) -> BatchHandler[E]:
            handler_name = name or f"{handler.__module__}.{handler.__qualname__}"

            async def one(event: E, ctx: EventContext) -> None:
                await handler([(event, ctx)])

            for event_type in event_types:
                self._add(Subscription(handler_name, event_type, one, handler))
            return handler

        return register

    def _add(self, subscription: Subscription[Any]) -> None:
        existing = self._by_type.setdefault(subscription.event_type.TYPE, [])
        if any(s.name == subscription.name for s in existing):
            raise ValueError(
                f"{subscription.name} is already subscribed to {subscription.event_type.TYPE}"
            )
        existing.append(subscription)

    def for_type(self, event_type: str) -> list[Subscription[Any]]:
        return self._by_type.get(event_type, [])

    @property
    def topics(self) -> list[str]:
        return sorted({s.event_type.TOPIC for subs in self._by_type.values() for s in subs})

    @property
    def types(self) -> list[str]:
        """The event types some subscription reacts to."""
        return sorted(name for name, subs in self._by_type.items() if subs)

    def __bool__(self) -> bool:
        return bool(self._by_type)


@dataclass(frozen=True)
class Redrive:
    """A record of a redrive topic: an event handed back to one consumer group."""

    group: str
    topic: str
    partition: int
    offset: int
    """Where the event first was."""
    replay: str | None

    @classmethod
    def of(cls, record: ConsumerRecord[Any, Any]) -> Redrive | None:
        headers = {
            name: (value or b"").decode("utf-8", "replace") for name, value in record.headers
        }
        try:
            return cls(
                headers[REDRIVE_GROUP],
                headers[ORIGIN_TOPIC],
                int(headers[ORIGIN_PARTITION]),
                int(headers[ORIGIN_OFFSET]),
                headers.get(REPLAY) or None,
            )
        except (KeyError, ValueError):
            return None


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    initial_backoff: float = 0.2
    max_backoff: float = 5.0

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter after the ``attempt``-th failure."""
        ceiling = min(self.max_backoff, self.initial_backoff * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)


@dataclass
class _Item:
    """A decodable record of a partition batch, with the handlers it subscribes."""

    record: ConsumerRecord[Any, Any]
    event: Event
    context: EventContext
    subscriptions: list[Subscription[Any]]
    replay: str | None

    def marker(self, subscription: Subscription[Any]) -> str:
        marker = f"{subscription.name}|{self.context.envelope.id}"
        if self.replay is not None:  # runs again, once per replay
            marker += f"|replay:{self.replay}"
        return marker


@dataclass
class _Poison:
    record: ConsumerRecord[Any, Any]
    error: Exception


_Entry: TypeAlias = "_Item | _Poison | ConsumerRecord[Any, Any]"
"""A record to handle, to dead-letter, or to pass over (nothing here reacts to it)."""


class _Partition:
    """The work of one partition's part of a batch: what ran, to record and commit."""

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        tp: TopicPartition,
        records: Sequence[ConsumerRecord[Any, Any]],
    ) -> None:
        self.consumer = consumer
        self.tp = tp
        self.records = records
        self.checkpoint = time.monotonic()
        self.committed: int | None = None
        """The offset committed so far in this batch (by a checkpoint)."""
        self.done: set[str] = set()
        """Markers of the handlers that already ran (recorded before, or in this batch)."""
        self.ran: list[Document] = []
        """Processed-event records to write for this batch."""
        self.handled: int | None = None
        """The highest offset handled so far."""


class EventConsumer:
    """Runs a service's subscriptions on its consumer group."""

    def __init__(
        self,
        service: str,
        subscriptions: Subscriptions,
        *,
        store: Store,
        outbox: Outbox,
        publisher: EnvelopePublisher,
        retry: RetryPolicy,
        settings: Settings,
        group_id: str | None = None,
        start_from: Literal["earliest", "latest"] = "earliest",
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self.service = service
        self.subscriptions = subscriptions
        self.store = store
        self.outbox = outbox
        self.publisher = publisher
        self.retry = retry
        self.settings = settings
        self.group_id = group_id or consumer_group(service)
        self.start_from = start_from
        self.batch_size = batch_size
        self.dead_letters = dead_letter_topic(service)
        self.redrives = redrive_topic(service)
        self.subscriber: LogicSubscriber[Any] | None = None
        self.membership = GroupMembership()
        self.round_trips: Counter[str] = Counter()
        """What the consumer itself asked of the store and the broker (``lookups``,
        ``records`` (processed-record inserts), ``commits``) and the ``records`` it
        took (``taken``): the round trips per event are these over ``taken``."""

    def attach(self, broker: KafkaBroker) -> None:
        """Declare the subscriber on ``broker`` (before the broker starts)."""

        async def on_batch(message: InjectedMessage) -> None:
            await self.handle_batch(message)

        redrives = Topic(  # created here if need be: it may not exist before the first run
            self.redrives,
            num_partitions=self.settings.topic_partitions,
            replication_factor=self.settings.topic_replication_factor,
        )
        subscriber = broker.subscriber(
            *self.subscriptions.topics,
            redrives,
            batch=True,
            max_records=self.batch_size,
            batch_timeout_ms=IDLE_WAIT_MS,
            group_id=self.group_id,
            ack_policy=AckPolicy.MANUAL,
            auto_offset_reset=self.start_from,
            title=f"{self.group_id}",
            listener=self.membership,
            session_timeout_ms=self.settings.consumer_session_timeout_ms,
            heartbeat_interval_ms=self.settings.consumer_heartbeat_interval_ms,
        )
        subscriber(on_batch)
        self.subscriber = subscriber

    async def forget_processed_before(self, cutoff: datetime) -> int:
        """Drop processed-event records older than ``cutoff`` (long past any redelivery)."""
        result = await self.store[PROCESSED].delete_many({"processedAt": {"$lt": cutoff}})
        return result.deleted_count

    async def prune_processed(self, retention: timedelta, every_seconds: float) -> None:
        """Keep the processed-event records bounded; runs for as long as the consumer."""
        while True:
            try:
                await self.forget_processed_before(datetime.now(UTC) - retention)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("pruning processed-event records failed")
            await asyncio.sleep(every_seconds)

    def assignment(self) -> set[TopicPartition]:
        consumer = getattr(self.subscriber, "consumer", None)
        return set(consumer.assignment()) if consumer is not None else set()

    async def ready(self) -> bool:
        """The group has given this member its share (possibly none: more replicas than
        partitions) and it knows where to read each partition from: a worker is ready."""
        if not self.membership.joined.is_set():
            return False
        return not self.assignment() or await self.positioned()

    async def positioned(self) -> bool:
        """Whether partitions are assigned and each one's read position is known: from
        then on, anything published is consumed (a group starting at "latest" resolves
        its positions only after the assignment)."""
        consumer = getattr(self.subscriber, "consumer", None)
        partitions = self.assignment()
        if consumer is None or not partitions:
            return False
        try:
            for partition in partitions:
                await asyncio.wait_for(consumer.position(partition), 5)
        except (KafkaError, TimeoutError):
            return False  # reassigned meanwhile, or not yet known: ask again
        return True

    def stopping(self) -> bool:
        """The subscriber is shutting down: finish the event at hand, start no other."""
        return self.subscriber is not None and not self.subscriber.running

    async def handle_batch(self, message: KafkaMessage) -> None:
        records = message.raw_message
        if isinstance(records, ConsumerRecord):
            records = (records,)
        await self.handle_records(message.consumer, list(records))

    async def handle_records(
        self, consumer: AIOKafkaConsumer, records: Sequence[ConsumerRecord[Any, Any]]
    ) -> None:
        """Handle a batch: its partitions concurrently, each in order; then commit each
        partition up to what it handled (once, after the effects are recorded)."""
        by_partition: dict[TopicPartition, list[ConsumerRecord[Any, Any]]] = {}
        for record in records:
            by_partition.setdefault(TopicPartition(record.topic, record.partition), []).append(
                record
            )
        self.round_trips["taken"] += len(records)
        parts = {tp: _Partition(consumer, tp, batch) for tp, batch in by_partition.items()}
        results = await asyncio.gather(
            *(self._handle_partition(part) for part in parts.values()), return_exceptions=True
        )
        commits: dict[TopicPartition, int] = {}
        failed = False
        for (tp, part), result in zip(parts.items(), results, strict=True):
            if isinstance(result, asyncio.CancelledError):
                raise result
            if isinstance(result, BaseException):
                failed = True
                log.error(
                    "handling a batch failed; its partition is read again from where it was",
                    exc_info=result,
                    extra={"topic": tp.topic, "partition": tp.partition},
                )
                consumer.seek(tp, part.committed or part.records[0].offset)
            elif part.handled is not None and part.handled + 1 != part.committed:
                commits[tp] = part.handled + 1
        # Only now are the effects durable: commit each partition up to what it handled.
        await self._commit(consumer, commits)
        if failed:
            await asyncio.sleep(self.retry.backoff(1))

    async def _commit(self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> bool:
        if not offsets:
            return True
        self.round_trips["commits"] += 1
        try:
            await consumer.commit(offsets)
        except KafkaError:
            log.warning(
                "offset commit failed; the batch will be redelivered and de-duplicated",
                extra={"offsets": {f"{tp.topic}:{tp.partition}": o for tp, o in offsets.items()}},
            )
            return False
        return True

    async def _checkpoint(self, part: _Partition) -> None:
        """Record and commit what a long part of a batch handled so far."""
        if time.monotonic() - part.checkpoint < CHECKPOINT_SECONDS or part.handled is None:
            return
        await self._record(part)
        if await self._commit(part.consumer, {part.tp: part.handled + 1}):
            part.committed = part.handled + 1
        part.checkpoint = time.monotonic()

    async def _handle_partition(self, part: _Partition) -> None:
        entries = [self._entry(record) for record in part.records]
        items = [entry for entry in entries if isinstance(entry, _Item)]
        markers = [item.marker(s) for item in items for s in item.subscriptions]
        if markers:
            self.round_trips["lookups"] += 1
            found = self.store[PROCESSED].find({"_id": {"$in": markers}}, {"_id": 1})
            part.done = {document["_id"] async for document in found}
        try:
            await self._walk(part, entries)
        finally:
            await self._record(part)

    def _entry(self, record: ConsumerRecord[Any, Any]) -> _Entry:
        redrive = None
        if record.topic == self.redrives:
            redrive = Redrive.of(record)
            if redrive is None or redrive.group != self.group_id:
                return record  # for another group of this service (e.g. a test's)
        try:
            envelope = Envelope.from_kafka(record.headers, record.value)
        except MalformedEnvelope as exc:
            return _Poison(record, exc)
        subscriptions = self.subscriptions.for_type(envelope.type)
        if not subscriptions:
            return record  # an event type this service does not react to
        try:
            event = registry.get(envelope.type).from_json(envelope.data)
        except (UnknownEventType, ValidationError) as exc:
            return _Poison(record, exc)
        event_context = EventContext(
            envelope,
            redrive.topic if redrive else record.topic,
            redrive.partition if redrive else record.partition,
            redrive.offset if redrive else record.offset,
            self.store,
            self.outbox,
            self.settings,
        )
        return _Item(
            record, event, event_context, subscriptions, redrive.replay if redrive else None
        )

    def _pending(self, part: _Partition, item: _Item) -> list[Subscription[Any]]:
        return [s for s in item.subscriptions if item.marker(s) not in part.done]

    async def _walk(self, part: _Partition, entries: list[_Entry]) -> None:
        """Handle the entries in order; stop before the next one when shutting down."""
        index = 0
        while index < len(entries) and not self.stopping():
            entry = entries[index]
            if isinstance(entry, _Poison):
                await self._dead_letter(entry.record, entry.error, attempts=1, handler=None)
            elif isinstance(entry, _Item):
                pending = self._pending(part, entry)
                names = {s.name for s in pending}
                for subscription in entry.subscriptions:
                    if subscription.name not in names:
                        metrics.record_event(
                            self.service, entry.context.envelope.type, "duplicate", None
                        )
                if len(pending) == 1 and pending[0].batch is not None:
                    run, after = self._run_of(part, entries, index, pending[0])
                    await self._run_batch(part, pending[0], run)
                    part.handled = _offset(entries[after - 1])
                    index = after
                    await self._checkpoint(part)
                    continue
                for subscription in pending:
                    await self._run_traced(part, subscription, entry)
            part.handled = _offset(entry)
            index += 1
            await self._checkpoint(part)

    def _run_of(
        self, part: _Partition, entries: list[_Entry], start: int, subscription: Subscription[Any]
    ) -> tuple[list[_Item], int]:
        """The consecutive items from ``start`` that only ``subscription`` has left to
        handle (passing over records nothing here handles and handled duplicates), and
        the index after them."""
        run: list[_Item] = []
        markers: set[str] = set()
        index = start
        while index < len(entries):
            entry = entries[index]
            if isinstance(entry, _Poison):
                break
            if isinstance(entry, _Item):
                pending = self._pending(part, entry)
                if pending and (len(pending) > 1 or pending[0].batch is not subscription.batch):
                    break
                marker = entry.marker(subscription)
                if pending and marker not in markers:  # the same event twice: once
                    markers.add(marker)
                    run.append(entry)
            index += 1
        return run, index

    async def _run_batch(
        self, part: _Partition, subscription: Subscription[Any], run: list[_Item]
    ) -> None:
        """One call of a batch handler for ``run``; if it fails, the events one by one
        (each with its retries, dead-lettered alone if it keeps failing)."""
        assert subscription.batch is not None
        if len(run) == 1:
            await self._run_traced(part, subscription, run[0])
            return
        started = time.perf_counter()
        with tracer().start_as_current_span(
            f"{run[0].record.topic} process",
            kind=trace.SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": run[0].record.topic,
                "messaging.batch.message_count": len(run),
                "messaging.kafka.offset": run[0].record.offset,
                "gala.handler": subscription.name,
            },
        ):
            try:
                await subscription.batch([(item.event, item.context) for item in run])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "batch handler failed; handling its events one by one",
                    extra={"handler": subscription.name, "events": len(run), "error": repr(exc)},
                )
                for item in run:
                    await self._run_traced(part, subscription, item)
                return
        each = (time.perf_counter() - started) / len(run)
        for item in run:
            metrics.record_event(self.service, item.context.envelope.type, "ok", each)
            self._ran(part, subscription, item)

    async def _run_traced(
        self, part: _Partition, subscription: Subscription[Any], item: _Item
    ) -> None:
        envelope = item.context.envelope
        record = item.record
        parent = context_from_traceparent(envelope.traceparent)
        with (
            tracer().start_as_current_span(
                f"{record.topic} process",
                context=parent,
                kind=trace.SpanKind.CONSUMER,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.destination.name": record.topic,
                    "messaging.message.id": envelope.id,
                    "messaging.kafka.offset": record.offset,
                    "cloudevents.event_type": envelope.type,
                },
            ),
            item.context.bound(),
        ):
            if await self._run_once(subscription, item.event, item.context, record):
                self._ran(part, subscription, item)

    def _ran(self, part: _Partition, subscription: Subscription[Any], item: _Item) -> None:
        marker = item.marker(subscription)
        part.done.add(marker)
        envelope = item.context.envelope
        part.ran.append(
            {
                "_id": marker,
                "handler": subscription.name,
                "eventId": envelope.id,
                "type": envelope.type,
                "processedAt": datetime.now(UTC),
                **({"replay": item.replay} if item.replay is not None else {}),
            }
        )

    async def _record(self, part: _Partition) -> None:
        """Write the processed-event records of the batch in one unordered insert (one
        that a concurrent delivery wrote first is fine: the effect is idempotent)."""
        if not part.ran:
            return
        ran, part.ran = part.ran, []
        self.round_trips["records"] += 1
        processed = self.store[PROCESSED]
        try:
            await processed.insert_many(ran, ordered=False)
        except BulkWriteError as exc:
            if duplicate_key_errors(exc) is None:
                raise
            # Not every store goes on past a duplicate in an unordered insert: one by one.
            for document in ran:
                with contextlib.suppress(DuplicateKeyError):
                    await processed.insert_one(document)

    async def _run_once(
        self,
        subscription: Subscription[Any],
        event: Event,
        event_context: EventContext,
        record: ConsumerRecord[Any, Any],
    ) -> bool:
        """Run the handler with its retries; ``False`` if it was dead-lettered."""
        event_type = event_context.envelope.type
        started = time.perf_counter()
        attempt = 0
        while True:
            attempt += 1
            try:
                await subscription.handler(event, event_context)
                break
            except asyncio.CancelledError:
                raise
            except PermanentError as exc:
                await self._dead_letter(record, exc, attempts=attempt, handler=subscription.name)
                metrics.record_event(
                    self.service, event_type, "dead_lettered", time.perf_counter() - started
                )
                return False
            except Exception as exc:
                if attempt >= self.retry.max_attempts:
                    await self._dead_letter(
                        record, exc, attempts=attempt, handler=subscription.name
                    )
                    metrics.record_event(
                        self.service, event_type, "dead_lettered", time.perf_counter() - started
                    )
                    return False
                metrics.record_event(self.service, event_type, "retried", None)
                delay = self.retry.backoff(attempt)
                log.warning(
                    "handler failed; retrying",
                    extra={"handler": subscription.name, "attempt": attempt, "error": repr(exc)},
                )
                await asyncio.sleep(delay)
        metrics.record_event(self.service, event_type, "ok", time.perf_counter() - started)
        return True

    async def _dead_letter(
        self,
        record: ConsumerRecord[Any, Any],
        error: BaseException,
        *,
        attempts: int,
        handler: str | None,
    ) -> None:
        """Park the message with its error. Retries until Kafka takes it: never skipped."""
        metrics.DEAD_LETTERS.labels(self.service, _known_type(record)).inc()
        # A redriven record fails as its original: no redrive headers, the first place.
        redrive = Redrive.of(record) if record.topic == self.redrives else None
        topic, partition, offset = (
            (redrive.topic, redrive.partition, redrive.offset)
            if redrive
            else (record.topic, record.partition, record.offset)
        )
        headers = [
            (name, value or b"") for name, value in record.headers if not _redrive_header(name)
        ]
        headers += [
            ("gala_dlq_error", f"{type(error).__name__}: {error}"[:4000].encode()),
            ("gala_dlq_trace", "".join(traceback.format_exception(error))[-8000:].encode()),
            ("gala_dlq_topic", topic.encode()),
            ("gala_dlq_partition", str(partition).encode()),
            ("gala_dlq_offset", str(offset).encode()),
            ("gala_dlq_group", self.group_id.encode()),
            ("gala_dlq_handler", (handler or "").encode()),
            ("gala_dlq_attempts", str(attempts).encode()),
            ("gala_dlq_failed_at", datetime.now(UTC).isoformat().encode()),
        ]
        log.error(
            "message dead-lettered",
            extra={
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "handler": handler,
                "error": repr(error),
            },
        )
        attempt = 0
        while True:
            attempt += 1
            try:
                await self.publisher.publish_raw(
                    self.dead_letters, record.key, record.value or b"", headers
                )
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("publishing to the dead-letter topic failed; retrying")
                await asyncio.sleep(self.retry.backoff(min(attempt, 10)))


def _offset(entry: _Entry) -> int:
    record = entry if isinstance(entry, ConsumerRecord) else entry.record
    offset: int = record.offset
    return offset


def _redrive_header(name: str) -> bool:
    """Headers a dead letter does not inherit from a redriven record (a replay's id stays:
    redriving the dead letter replays it again)."""
    return name.startswith(DEAD_LETTER_HEADER_PREFIX) or name in (
        REDRIVE_GROUP,
        ORIGIN_TOPIC,
        ORIGIN_PARTITION,
        ORIGIN_OFFSET,
    )


def _known_type(record: ConsumerRecord[Any, Any]) -> str:
    """The record's event type as a metric label: a registered type, else ``unknown`` (a
    poison message must not invent label values)."""
    raw = dict(record.headers).get("ce_type") or b""
    name = raw.decode("utf-8", errors="replace")
    try:
        registry.get(name)
    except UnknownEventType:
        return "unknown"
    return name


class GroupMembership(ConsumerRebalanceListener):  # type: ignore[misc]
    """Whether the member has its assignment: set once the group gave it its partitions,
    cleared while they are being taken away (a rebalance)."""

    def __init__(self) -> None:
        self.joined = asyncio.Event()

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self.joined.clear()

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self.joined.set()
