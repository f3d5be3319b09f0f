"""The idempotent consumer: at-least-once in, effects once, nothing lost.

For each message, in partition order:

1. read the CloudEvents envelope and validate the payload (a malformed message is
   poison: straight to the dead-letter topic, no retries);
2. for each handler subscribed to its type, skip it if the processed-event record says
   it already ran, else run it with bounded retries and exponential backoff, and record
   it as processed; a handler that still fails goes to the dead-letter topic with its
   error;
3. only then commit this message's offset (and only this partition's), so a crash at
   any point redelivers the message; a handler cancelled at shutdown commits nothing.

Handlers must make their effects idempotent by themselves as well (deterministic ids,
upserts): the processed record is written after the effect, so a crash between the two
runs the handler again.

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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Literal, TypeVar

from aiokafka import ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, Topic
from faststream.kafka.annotations import KafkaMessage as InjectedMessage
from faststream.kafka.message import KafkaMessage
from faststream.kafka.subscriber.usecase import LogicSubscriber
from opentelemetry import trace
from pydantic import ValidationError
from pymongo.errors import DuplicateKeyError

from gala import context, metrics
from gala.events.bus import EnvelopePublisher
from gala.events.envelope import Envelope, MalformedEnvelope
from gala.events.model import Event, UnknownEventType, registry
from gala.events.outbox import Outbox
from gala.events.topics import consumer_group, dead_letter_topic, redrive_topic
from gala.settings import Settings
from gala.store import Index, Store
from gala.tracing import context_from_traceparent, tracer

log = logging.getLogger(__name__)

PROCESSED = "processed_events"
PROCESSED_INDEX = Index(PROCESSED, [("processedAt", 1)], name="processed_at")
E = TypeVar("E", bound=Event)

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


Handler = Callable[[E, EventContext], Awaitable[None]]


@dataclass(frozen=True)
class Subscription(Generic[E]):
    name: str
    event_type: type[E]
    handler: Handler[E]


@dataclass
class Subscriptions:
    """Every event a service reacts to, declared in one place (its subscriptions.py)."""

    _by_type: dict[str, list[Subscription[Any]]] = field(default_factory=dict)

    def on(
        self, event_type: type[E], *, name: str | None = None
    ) -> Callable[[Handler[E]], Handler[E]]:
        def register(handler: Handler[E]) -> Handler[E]:
            handler_name = name or f"{handler.__module__}.{handler.__qualname__}"
            subscription = Subscription(handler_name, event_type, handler)
            existing = self._by_type.setdefault(event_type.TYPE, [])
            if any(s.name == handler_name for s in existing):
                raise ValueError(f"{handler_name} is already subscribed to {event_type.TYPE}")
            existing.append(subscription)
            return handler

        return register

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
        self.dead_letters = dead_letter_topic(service)
        self.redrives = redrive_topic(service)
        self.subscriber: LogicSubscriber[Any] | None = None
        self.membership = GroupMembership()

    def attach(self, broker: KafkaBroker) -> None:
        """Declare the subscriber on ``broker`` (before the broker starts)."""

        async def on_message(message: InjectedMessage) -> None:
            await self.handle_message(message)

        redrives = Topic(  # created here if need be: it may not exist before the first run
            self.redrives,
            num_partitions=self.settings.topic_partitions,
            replication_factor=self.settings.topic_replication_factor,
        )
        subscriber = broker.subscriber(
            *self.subscriptions.topics,
            redrives,
            group_id=self.group_id,
            ack_policy=AckPolicy.MANUAL,
            auto_offset_reset=self.start_from,
            title=f"{self.group_id}",
            listener=self.membership,
            session_timeout_ms=self.settings.consumer_session_timeout_ms,
            heartbeat_interval_ms=self.settings.consumer_heartbeat_interval_ms,
        )
        subscriber(on_message)
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

    async def handle_message(self, message: KafkaMessage) -> None:
        record = message.raw_message
        assert isinstance(record, ConsumerRecord)
        await self.handle_record(record)
        # Only now are the effects durable: commit this partition up to this message.
        partition = TopicPartition(record.topic, record.partition)
        try:
            await message.consumer.commit({partition: record.offset + 1})  # type: ignore[call-arg]
        except KafkaError:
            log.warning(
                "offset commit failed; the message will be redelivered and de-duplicated",
                extra={
                    "topic": record.topic,
                    "partition": record.partition,
                    "offset": record.offset,
                },
            )

    async def handle_record(self, record: ConsumerRecord[Any, Any]) -> None:
        redrive = None
        if record.topic == self.redrives:
            redrive = Redrive.of(record)
            if redrive is None or redrive.group != self.group_id:
                return  # for another group of this service (e.g. a test's)
        try:
            envelope = Envelope.from_kafka(record.headers, record.value)
        except MalformedEnvelope as exc:
            await self._dead_letter(record, exc, attempts=1, handler=None)
            return
        subscriptions = self.subscriptions.for_type(envelope.type)
        if not subscriptions:
            return  # an event type this service does not react to
        try:
            event = registry.get(envelope.type).from_json(envelope.data)
        except (UnknownEventType, ValidationError) as exc:
            await self._dead_letter(record, exc, attempts=1, handler=None)
            return
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
            context.bound(correlation=envelope.correlationid or envelope.id, causation=envelope.id),
        ):
            event_context = EventContext(
                envelope,
                redrive.topic if redrive else record.topic,
                redrive.partition if redrive else record.partition,
                redrive.offset if redrive else record.offset,
                self.store,
                self.outbox,
                self.settings,
            )
            replay = redrive.replay if redrive else None
            for subscription in subscriptions:
                await self._run_once(subscription, event, event_context, record, replay)

    async def _run_once(
        self,
        subscription: Subscription[Any],
        event: Event,
        event_context: EventContext,
        record: ConsumerRecord[Any, Any],
        replay: str | None = None,
    ) -> None:
        processed = self.store[PROCESSED]
        marker = f"{subscription.name}|{event_context.envelope.id}"
        if replay is not None:  # runs again, once per replay
            marker += f"|replay:{replay}"
        event_type = event_context.envelope.type
        if await processed.find_one({"_id": marker}, {"_id": 1}) is not None:
            metrics.record_event(self.service, event_type, "duplicate", None)
            return
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
                return
            except Exception as exc:
                if attempt >= self.retry.max_attempts:
                    await self._dead_letter(
                        record, exc, attempts=attempt, handler=subscription.name
                    )
                    metrics.record_event(
                        self.service, event_type, "dead_lettered", time.perf_counter() - started
                    )
                    return
                metrics.record_event(self.service, event_type, "retried", None)
                delay = self.retry.backoff(attempt)
                log.warning(
                    "handler failed; retrying",
                    extra={"handler": subscription.name, "attempt": attempt, "error": repr(exc)},
                )
                await asyncio.sleep(delay)
        metrics.record_event(self.service, event_type, "ok", time.perf_counter() - started)
        # A concurrent delivery may have finished first; the effect is idempotent.
        with contextlib.suppress(DuplicateKeyError):
            await processed.insert_one(
                {
                    "_id": marker,
                    "handler": subscription.name,
                    "eventId": event_context.envelope.id,
                    "type": event_context.envelope.type,
                    "processedAt": datetime.now(UTC),
                    **({"replay": replay} if replay is not None else {}),
                }
            )

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
