"""Operations on a running system, for ``gala ops`` (the CLI only parses and prints).

- :func:`lag`: per service (its consumer group) and partition of every topic it reads,
  the committed offset, the end offset and the lag.
- :func:`dead_letters`, :func:`dead_letter`: what is parked on ``gala.<service>.dlq``.
- :func:`redrive`: dead letters handed back to the group that failed them, on the
  service's redrive topic (``gala.<service>.redrive``), which only that service's
  consumer reads, and only the group each record names. The consumer handles it as the
  original: handlers that already ran skip it (the processed-event record). Each
  redriven dead letter is remembered in the service's database (``ops_redrives``), so a
  second run redrives nothing more; the dead-letter topic itself is never changed.
- :func:`replay`: every event a service reacts to, published since a time on the topics
  it reads, copied to its redrive topic with a replay id: its handlers run again (once
  per replay), whatever the processed-event records say.
- :func:`outbox`: pending documents and the oldest pending age per service.

Nothing here deletes or moves a message: redrive and replay copy, then acknowledge.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.metadata
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from pymongo.errors import DuplicateKeyError

from gala.app import ServiceDefinition
from gala.events.bus import EnvelopePublisher, make_broker
from gala.events.consumer import (
    DEAD_LETTER_HEADER_PREFIX,
    ORIGIN_OFFSET,
    ORIGIN_PARTITION,
    ORIGIN_TOPIC,
    REDRIVE_GROUP,
    REPLAY,
)
from gala.events.outbox import OutboxRelay
from gala.events.topics import (
    LagReader,
    consumer_group,
    dead_letter_topic,
    ensure_topics,
    partition_count,
    redrive_topic,
)
from gala.settings import Settings
from gala.store import Store

REDRIVES = "ops_redrives"
"""The collection, in each service's database, of the dead letters already redriven."""
NOT_SERVICES = {"gala-shared", "gala-gateway"}


class OpsError(Exception):
    """Something an operator asked for that cannot be done (a one-line explanation)."""


# --- services ---------------------------------------------------------------------------


def installed_services() -> list[str]:
    """The services installed in this environment (``gala-<name>`` distributions)."""
    names = {
        dist.metadata["Name"].lower()
        for dist in importlib.metadata.distributions()
        if dist.metadata["Name"]
    }
    return sorted(
        name.removeprefix("gala-")
        for name in names
        if name.startswith("gala-") and name not in NOT_SERVICES
    )


def load_service(name: str) -> ServiceDefinition:
    """A service's definition: ``<name>.bootstrap.service``."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise OpsError(f"{name!r} is not a service name")
    try:
        module = importlib.import_module(f"{name}.bootstrap")
    except ModuleNotFoundError as exc:
        known = ", ".join(installed_services())
        raise OpsError(f"no service {name!r} is installed (installed: {known})") from exc
    definition = getattr(module, "service", None)
    if not isinstance(definition, ServiceDefinition):
        raise OpsError(f"{name}.bootstrap has no ServiceDefinition named service")
    return definition


@dataclass(frozen=True)
class Target:
    """A service as the ops commands see it: its definition, group and database."""

    definition: ServiceDefinition
    group: str
    database: str

    @classmethod
    def of(
        cls, definition: ServiceDefinition, settings: Settings, group: str | None = None
    ) -> Target:
        return cls(
            definition,
            group or settings.consumer_group or consumer_group(definition.name),
            settings.database_name(definition.name),
        )

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def consumes(self) -> bool:
        return bool(self.definition.subscriptions)

    @property
    def reads(self) -> list[str]:
        """Every topic the service's consumer reads (its redrive topic included)."""
        if not self.consumes:
            return []
        return sorted({*self.definition.subscriptions.topics, redrive_topic(self.name)})

    def require_consumer(self) -> None:
        if not self.consumes:
            raise OpsError(f"{self.name} consumes no events")


# --- lag --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lag:
    service: str
    group: str
    topic: str
    partition: int
    committed: int | None
    end: int
    lag: int


async def lag(settings: Settings, targets: Sequence[Target]) -> list[Lag]:
    """Each consuming service's group, per partition of every topic it reads."""
    rows: list[Lag] = []
    for target in targets:
        if not target.consumes:
            continue
        reader = LagReader(settings.kafka_bootstrap, target.group, target.reads)
        try:
            offsets = await reader.offsets()
        finally:
            await reader.close()
        rows += [
            Lag(target.name, target.group, topic, partition, o.committed, o.end, o.lag)
            for (topic, partition), o in offsets.items()
        ]
    return rows


# --- outbox -----------------------------------------------------------------------------


@dataclass(frozen=True)
class OutboxState:
    service: str
    database: str
    pending: dict[str, int]
    """Pending documents per collection."""
    oldest_pending_age_seconds: float

    @property
    def pending_documents(self) -> int:
        return sum(self.pending.values())


async def outbox(settings: Settings, targets: Sequence[Target]) -> list[OutboxState]:
    """Each service's pending outbox documents and the age of its oldest pending event."""
    rows = []
    for target in targets:
        if not target.definition.outbox_collections:
            continue
        store = Store(settings.mongo_url, target.database)
        try:
            # measure() only reads: its publisher is never connected
            relay = OutboxRelay(
                store,
                EnvelopePublisher(make_broker(settings.kafka_bootstrap, "ops")),
                target.definition.outbox_collections,
                service=target.name,
            )
            pending, age = await relay.measure()
        finally:
            await store.close()
        rows.append(OutboxState(target.name, target.database, pending, round(age, 3)))
    return rows


# --- dead letters -----------------------------------------------------------------------


@dataclass(frozen=True)
class DeadLetter:
    """A message parked on a service's dead-letter topic, with what its headers tell."""

    service: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    redriven_at: datetime | None = None

    def header(self, name: str) -> str:
        for header, value in self.headers:
            if header == name:
                return (value or b"").decode("utf-8", "replace")
        return ""

    @property
    def event_id(self) -> str:
        return self.header("ce_id")

    @property
    def event_type(self) -> str:
        return self.header("ce_type")

    @property
    def group(self) -> str:
        return self.header("gala_dlq_group")

    @property
    def origin(self) -> tuple[str, int, int]:
        """Where the message was when it failed."""
        return (
            self.header("gala_dlq_topic"),
            _int(self.header("gala_dlq_partition")),
            _int(self.header("gala_dlq_offset")),
        )

    def summary(self) -> dict[str, Any]:
        topic, partition, offset = self.origin
        return {
            "service": self.service,
            "partition": self.partition,
            "offset": self.offset,
            "failedAt": self.header("gala_dlq_failed_at"),
            "eventType": self.event_type,
            "eventId": self.event_id,
            "origin": f"{topic}:{partition}:{offset}",
            "group": self.group,
            "handler": self.header("gala_dlq_handler"),
            "attempts": _int(self.header("gala_dlq_attempts")),
            "error": self.header("gala_dlq_error"),
            "redrivenAt": self.redriven_at.isoformat() if self.redriven_at else None,
        }

    def detail(self) -> dict[str, Any]:
        try:
            payload: Any = json.loads(self.value)
        except ValueError:
            payload = self.value.decode("utf-8", "replace")
        return {
            **self.summary(),
            "key": (self.key or b"").decode("utf-8", "replace"),
            "trace": self.header("gala_dlq_trace"),
            "headers": {
                name: (value or b"").decode("utf-8", "replace")
                for name, value in self.headers
                if name != "gala_dlq_trace"
            },
            "payload": payload,
        }


async def dead_letters(
    settings: Settings, target: Target, *, limit: int | None = 50
) -> list[DeadLetter]:
    """The service's dead letters, oldest first (the latest ``limit`` when given)."""
    async with _reader(settings) as reader:
        found = [
            _dead_letter(target, record)
            async for record in reader.read(dead_letter_topic(target.name), last=limit)
        ]
    found.sort(key=lambda letter: (letter.header("gala_dlq_failed_at"), letter.offset))
    if limit is not None:
        found = found[-limit:] if limit > 0 else []
    return await _with_redrives(settings, target, found)


async def dead_letter(
    settings: Settings,
    target: Target,
    *,
    offset: int | None = None,
    partition: int | None = None,
    event_id: str | None = None,
) -> DeadLetter:
    """One dead letter, by its offset (and partition, if the offset is in several) or by
    its event id (the latest dead letter of that event)."""
    found = await _find(settings, target, offset=offset, partition=partition, event_id=event_id)
    (letter,) = await _with_redrives(settings, target, [found])
    return letter


async def _find(
    settings: Settings,
    target: Target,
    *,
    offset: int | None,
    partition: int | None,
    event_id: str | None,
) -> DeadLetter:
    topic = dead_letter_topic(target.name)
    async with _reader(settings) as reader:
        if offset is not None:
            partitions = await reader.partitions(topic)
            if partition is not None:
                partitions = [p for p in partitions if p.partition == partition]
            candidates = [
                _dead_letter(target, record)
                for tp in partitions
                if (record := await reader.at(tp, offset)) is not None
            ]
            if not candidates:
                where = f" in partition {partition}" if partition is not None else ""
                raise OpsError(f"{topic} has no message at offset {offset}{where}")
            if len(candidates) > 1:
                numbers = ", ".join(str(c.partition) for c in candidates)
                raise OpsError(f"offset {offset} is in partitions {numbers}: pass --partition")
            return candidates[0]
        if not event_id:
            raise OpsError("name a dead letter by its offset or its event id")
        matches = [
            _dead_letter(target, record)
            async for record in reader.read(topic)
            if dict(record.headers).get("ce_id") == event_id.encode()
        ]
        if not matches:
            raise OpsError(f"{topic} holds no dead letter of event {event_id}")
        return max(matches, key=lambda letter: letter.header("gala_dlq_failed_at"))


def _dead_letter(target: Target, record: ConsumerRecord[bytes, bytes]) -> DeadLetter:
    return DeadLetter(
        target.name,
        record.partition,
        record.offset,
        record.key,
        record.value or b"",
        [(name, value or b"") for name, value in record.headers],
    )


def _redrive_id(target: Target, letter: DeadLetter) -> str:
    return f"{dead_letter_topic(target.name)}|{letter.partition}|{letter.offset}"


async def _with_redrives(
    settings: Settings, target: Target, letters: list[DeadLetter]
) -> list[DeadLetter]:
    if not letters:
        return letters
    store = Store(settings.mongo_url, target.database)
    try:
        ids = [_redrive_id(target, letter) for letter in letters]
        done = {
            document["_id"]: document["redrivenAt"]
            async for document in store[REDRIVES].find({"_id": {"$in": ids}})
        }
    finally:
        await store.close()
    return [
        DeadLetter(**{**letter.__dict__, "redriven_at": done.get(_redrive_id(target, letter))})
        for letter in letters
    ]


# --- redrive ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Redriven:
    letter: DeadLetter
    outcome: str
    """``redriven``, ``already redriven`` or ``another group`` (``--all`` leaves those)."""

    def summary(self) -> dict[str, Any]:
        topic, partition, offset = self.letter.origin
        return {
            "service": self.letter.service,
            "partition": self.letter.partition,
            "offset": self.letter.offset,
            "eventType": self.letter.event_type,
            "eventId": self.letter.event_id,
            "origin": f"{topic}:{partition}:{offset}",
            "group": self.letter.group,
            "outcome": self.outcome,
            "redrivenAt": self.letter.redriven_at.isoformat() if self.letter.redriven_at else None,
        }


async def redrive(
    settings: Settings,
    target: Target,
    *,
    offset: int | None = None,
    partition: int | None = None,
    event_id: str | None = None,
    everything: bool = False,
) -> list[Redriven]:
    """Hand dead letters back to the consumer group that failed them: one (by offset or
    event id), or ``everything`` of the target's group not redriven yet. A dead letter
    already redriven is not redriven again (a failure after the redrive is a new dead
    letter, at a new offset)."""
    target.require_consumer()
    if everything:
        letters = await dead_letters(settings, target, limit=None)
    else:
        letters = [
            await dead_letter(
                settings, target, offset=offset, partition=partition, event_id=event_id
            )
        ]
    results = []
    await _ensure_redrive_topic(settings, target)
    store = Store(settings.mongo_url, target.database)
    try:
        async with _producer(settings) as producer:
            for letter in letters:
                if letter.redriven_at is not None:
                    results.append(Redriven(letter, "already redriven"))
                    continue
                if everything and letter.group != target.group:
                    results.append(Redriven(letter, "another group"))
                    continue
                results.append(await _redrive_one(producer, store, target, letter))
    finally:
        await store.close()
    return results


async def _redrive_one(
    producer: AIOKafkaProducer, store: Store, target: Target, letter: DeadLetter
) -> Redriven:
    topic, partition, offset = letter.origin
    if not topic or not letter.group:
        raise OpsError(
            f"the dead letter at {letter.partition}:{letter.offset} does not say where it failed"
        )
    headers = [
        (name, value)
        for name, value in letter.headers
        if not name.startswith(DEAD_LETTER_HEADER_PREFIX)
    ]
    headers += _origin_headers(letter.group, topic, partition, offset)
    sent = await producer.send_and_wait(
        redrive_topic(target.name), letter.value, key=letter.key, headers=headers
    )
    now = datetime.now(UTC)
    # after the publish: a crash in between redrives it again, which the consumer ignores
    with contextlib.suppress(DuplicateKeyError):
        await store[REDRIVES].insert_one(
            {
                "_id": _redrive_id(target, letter),
                "eventId": letter.event_id,
                "group": letter.group,
                "redrivenAt": now,
                "redriveTopic": sent.topic,
                "redrivePartition": sent.partition,
                "redriveOffset": sent.offset,
            }
        )
    return Redriven(DeadLetter(**{**letter.__dict__, "redriven_at": now}), "redriven")


def _origin_headers(group: str, topic: str, partition: int, offset: int) -> list[tuple[str, bytes]]:
    return [
        (REDRIVE_GROUP, group.encode()),
        (ORIGIN_TOPIC, topic.encode()),
        (ORIGIN_PARTITION, str(partition).encode()),
        (ORIGIN_OFFSET, str(offset).encode()),
    ]


# --- replay -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplayedPartition:
    topic: str
    partition: int
    first_offset: int
    end_offset: int
    """The partition's end when the replay began: what came later is not replayed."""
    copied: int


@dataclass
class Replay:
    service: str
    group: str
    replay_id: str
    since: datetime
    partitions: list[ReplayedPartition] = field(default_factory=list)

    @property
    def copied(self) -> int:
        return sum(p.copied for p in self.partitions)


async def replay(settings: Settings, target: Target, since: datetime) -> Replay:
    """Copy every event the service reacts to, published at or after ``since`` on the
    topics it reads, to its redrive topic for its group, marked as one replay: its
    handlers run again for exactly those events (once each)."""
    target.require_consumer()
    since = since if since.tzinfo else since.replace(tzinfo=UTC)
    done = Replay(target.name, target.group, uuid.uuid4().hex, since)
    types = {name.encode() for name in target.definition.subscriptions.types}
    await _ensure_redrive_topic(settings, target)
    async with _reader(settings) as reader, _producer(settings) as producer:
        for topic in target.definition.subscriptions.topics:
            partitions = await reader.partitions(topic)
            if not partitions:
                continue
            ends = await reader.consumer.end_offsets(partitions)
            starts = await reader.consumer.offsets_for_times(
                dict.fromkeys(partitions, int(since.timestamp() * 1000))
            )
            for tp in partitions:
                found = starts.get(tp)
                first = found.offset if found is not None else ends[tp]
                pending = []
                async for record in reader.read_range(tp, first, ends[tp]):
                    if dict(record.headers).get("ce_type") not in types:
                        continue
                    headers = [(name, value or b"") for name, value in record.headers]
                    headers += _origin_headers(
                        target.group, record.topic, record.partition, record.offset
                    )
                    headers.append((REPLAY, done.replay_id.encode()))
                    pending.append(
                        await producer.send(
                            redrive_topic(target.name),
                            record.value or b"",
                            key=record.key,
                            headers=headers,
                        )
                    )
                    if len(pending) % 1000 == 0:
                        await asyncio.gather(*pending[-1000:])
                await asyncio.gather(*pending)  # every copy acknowledged
                done.partitions.append(
                    ReplayedPartition(topic, tp.partition, first, ends[tp], len(pending))
                )
    return done


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``--since``: an ISO 8601 time (UTC unless it says otherwise), or a duration back
    from now (``90s``, ``15m``, ``2h``, ``1d``)."""
    now = now or datetime.now(UTC)
    match = re.fullmatch(r"\s*(\d+)\s*([smhd])\s*", text)
    if match:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
        return now - timedelta(**{unit: int(match.group(1))})
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise OpsError(
            f"--since {text!r} is neither an ISO 8601 time nor a duration like 15m"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# --- Kafka helpers ----------------------------------------------------------------------


async def _ensure_redrive_topic(settings: Settings, target: Target) -> None:
    """The service's consumer creates it too; whoever comes first."""
    await ensure_topics(
        settings.kafka_bootstrap,
        [redrive_topic(target.name)],
        partitions=settings.topic_partitions,
        replication_factor=settings.topic_replication_factor,
    )


@dataclass
class _Reader:
    """Reads topics outside any consumer group (commits nothing, moves no group)."""

    consumer: AIOKafkaConsumer
    bootstrap: str
    timeout: float = 30.0

    async def partitions(self, topic: str) -> list[TopicPartition]:
        """The topic's partitions (none when it does not exist)."""
        return [
            TopicPartition(topic, n) for n in range(await partition_count(self.bootstrap, topic))
        ]

    async def read(self, topic: str, last: int | None = None) -> AsyncIterator[ConsumerRecord]:
        """Every record of ``topic`` up to its end now (the last ``last`` per partition)."""
        partitions = await self.partitions(topic)
        if not partitions:
            return
        beginnings = await self.consumer.beginning_offsets(partitions)
        ends = await self.consumer.end_offsets(partitions)
        for tp in partitions:
            first = beginnings[tp] if last is None else max(beginnings[tp], ends[tp] - last)
            async for record in self.read_range(tp, first, ends[tp]):
                yield record

    async def at(self, tp: TopicPartition, offset: int) -> ConsumerRecord | None:
        beginning = (await self.consumer.beginning_offsets([tp]))[tp]
        end = (await self.consumer.end_offsets([tp]))[tp]
        if not beginning <= offset < end:
            return None
        async for record in self.read_range(tp, offset, offset + 1):
            return record
        return None

    async def read_range(
        self, tp: TopicPartition, first: int, end: int
    ) -> AsyncIterator[ConsumerRecord]:
        """Records of one partition from ``first`` to before ``end`` (what is left of it:
        offsets may have gaps, e.g. transaction markers)."""
        if first >= end:
            return
        self.consumer.assign([tp])
        self.consumer.seek(tp, first)
        deadline = time.monotonic() + self.timeout
        while True:
            batches = await self.consumer.getmany(tp, timeout_ms=500, max_records=500)
            for record in batches.get(tp, []):
                if record.offset >= end:
                    return
                yield record
                deadline = time.monotonic() + self.timeout
            if await self.consumer.position(tp) >= end:
                return
            if time.monotonic() > deadline:
                raise OpsError(f"reading {tp.topic}:{tp.partition} stalled before offset {end}")


@contextlib.asynccontextmanager
async def _reader(settings: Settings) -> AsyncIterator[_Reader]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id="gala-ops",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        yield _Reader(consumer, settings.kafka_bootstrap)
    finally:
        await consumer.stop()


@contextlib.asynccontextmanager
async def _producer(settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id="gala-ops",
        acks="all",
        enable_idempotence=True,
    )
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return -1
