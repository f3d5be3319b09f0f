"""Helpers for tests that run on the real broker and store (every service's tests use them)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from fastapi import FastAPI
from pymongo import monitoring

from gala.app import ProcessRole, Runtime, ServiceDefinition, create_app
from gala.contracts.contacts import ContactCreated, ContactUpdated
from gala.events.consumer import EventContext
from gala.events.envelope import Envelope
from gala.events.model import Event
from gala.events.outbox import Outbox
from gala.events.topics import ensure_topics, partition_count
from gala.identity import IDENTITY_HEADER, Principal, Role
from gala.settings import Settings
from gala.store import Store

T = TypeVar("T")


def isolated(settings: Settings, service: str) -> Settings:
    """Settings for a test's own instance of ``service``: its own database, and its own
    consumer group starting at the end of each topic (no other process's events).

    Wait for the partition assignment (``wait_until_assigned``) before publishing.
    """
    return settings.model_copy(
        update={
            "mongo_database": unique_name(f"gala_{service}_"),
            "consumer_group": unique_name(f"gala.{service}.test-"),
            "consumer_start_from": "latest",
        }
    )


def unique_name(prefix: str = "t") -> str:
    """A name no other test uses: isolates topics, groups and databases."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


async def eventually(
    probe: Callable[[], Awaitable[T]], *, timeout: float = 30.0, interval: float = 0.1
) -> T:
    """Poll ``probe`` until it answers something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {result!r})")
        await asyncio.sleep(interval)


async def read_topic(
    bootstrap: str, topic: str, *, count: int, timeout: float = 20.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read a topic from its beginning, outside any group, until ``count`` records arrive."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        count_of_partitions = await eventually(
            lambda: partition_count(bootstrap, topic), timeout=timeout, interval=0.2
        )
        partitions = [TopicPartition(topic, n) for n in range(count_of_partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        records: list[ConsumerRecord[bytes, bytes]] = []
        deadline = time.monotonic() + timeout
        while len(records) < count and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for batch in batches.values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


async def wait_until_assigned(runtime: Runtime, timeout: float = 60.0) -> None:
    """Wait until the service's consumer owns partitions and knows where it reads from
    (a new group joins lazily): events published after this are consumed."""
    consumer = runtime.consumer
    assert consumer is not None, "this runtime consumes nothing"

    await eventually(consumer.positioned, timeout=timeout, interval=0.1)


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Start an app's runtime and talk to it in-process over ASGI."""
    runtime: Runtime = app.state.runtime
    await runtime.start()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            yield client
    finally:
        await runtime.stop()


def identity_headers(runtime: Runtime, principal: Principal) -> dict[str, Any]:
    """Headers as the gateway would forward them for ``principal``."""
    return {IDENTITY_HEADER: runtime.tokens.issue(principal)}


async def committed_offsets(bootstrap: str, group: str) -> int:
    """How many messages a consumer group has committed, over all its partitions."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
        return sum(meta.offset for meta in offsets.values() if meta.offset > 0)
    finally:
        await admin.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def http_server(app: Any, port: int | None = None) -> AsyncIterator[str]:
    """Serve an ASGI app on a real loopback port (lifespan included); yields its base URL."""
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        await eventually(_started(server, task), timeout=30, interval=0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def _started(server: uvicorn.Server, task: asyncio.Task[None]) -> Callable[[], Awaitable[bool]]:
    async def probe() -> bool:
        if task.done():
            task.result()  # raises what stopped the server
            raise AssertionError("the server stopped before it started")
        return bool(server.started)

    return probe


@dataclass
class TopicTail:
    """What is published on a topic from now on (not before), by subject.

    Service topics are shared by every test and run, so tests read from the end.
    """

    bootstrap: str
    topic: str
    consumer: AIOKafkaConsumer | None = None
    records: list[ConsumerRecord[bytes, bytes]] = field(default_factory=list)

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await consumer.start()
        partitions = [
            TopicPartition(self.topic, n)
            for n in range(await partition_count(self.bootstrap, self.topic))
        ]
        assert partitions, f"{self.topic} does not exist"
        consumer.assign(partitions)
        for partition, offset in (await consumer.end_offsets(partitions)).items():
            consumer.seek(partition, offset)
        self.consumer = consumer

    async def stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()

    async def _poll(self, timeout_ms: int = 200) -> None:
        assert self.consumer is not None
        batches = await self.consumer.getmany(timeout_ms=timeout_ms)
        for batch in batches.values():
            self.records.extend(batch)

    def of(self, subject: str) -> list[tuple[ConsumerRecord[bytes, bytes], Envelope]]:
        found = []
        for record in self.records:
            envelope = Envelope.from_kafka(record.headers, record.value)
            if envelope.subject == subject:
                found.append((record, envelope))
        return found

    async def wait_for(
        self, subject: str, count: int, timeout: float = 20.0
    ) -> list[tuple[ConsumerRecord[bytes, bytes], Envelope]]:
        """The first ``count`` events about ``subject``, in the order they were published."""
        deadline = time.monotonic() + timeout
        while len(self.of(subject)) < count and time.monotonic() < deadline:
            await self._poll()
        found = self.of(subject)
        assert len(found) >= count, f"{len(found)} of {count} events about {subject} arrived"
        return found[:count]

    async def types(self, subject: str, count: int) -> list[str]:
        return [envelope.type for _, envelope in await self.wait_for(subject, count)]

    def distinct(self, subject: str) -> list[Envelope]:
        """The events about ``subject`` as a consumer sees them: each event id once (a
        topic may carry one event twice: publishing is at least once)."""
        seen: set[str] = set()
        found = []
        for _, envelope in self.of(subject):
            if envelope.id not in seen:
                seen.add(envelope.id)
                found.append(envelope)
        return found

    async def distinct_types(self, subject: str, count: int, timeout: float = 20.0) -> list[str]:
        """The types of the first ``count`` distinct events about ``subject``."""
        deadline = time.monotonic() + timeout
        while len(self.distinct(subject)) < count and time.monotonic() < deadline:
            await self._poll()
        found = self.distinct(subject)
        assert len(found) >= count, f"{len(found)} of {count} events about {subject} arrived"
        return [envelope.type for envelope in found[:count]]


def envelope_of_event(event: Event, subject: str, event_id: str | None = None) -> Envelope:
    """``event`` as another service would put it on the bus (the same id = a redelivery)."""
    return Envelope(
        id=event_id or str(uuid.uuid4()),
        type=event.TYPE,
        source="/gala/test",
        subject=subject,
        time=datetime.now(UTC),
        data=event.to_json(),
        venueid=getattr(event, "venue_id", None),
    )


async def publish_event(
    runtime: Runtime, event: Event, subject: str, event_id: str | None = None
) -> str:
    """Publish ``event`` through a running service's publisher (see envelope_of_event)."""
    envelope = envelope_of_event(event, subject, event_id)
    await runtime.publisher.publish(event.TOPIC, envelope)
    return envelope.id


async def publish_events(bootstrap: str, events: Sequence[tuple[Event, str]]) -> None:
    """Publish ``(event, subject)`` pairs without a running service (e.g. to processes)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for event, subject in events:
            envelope = envelope_of_event(event, subject)
            await producer.send_and_wait(
                event.TOPIC, envelope.data, key=envelope.key, headers=envelope.headers()
            )
    finally:
        await producer.stop()


@dataclass
class ServiceUnderTest:
    """A running service (in-process) and ways to call it as anyone."""

    app: FastAPI
    client: httpx.AsyncClient

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.state.runtime
        return runtime

    def headers(self, principal: Principal) -> dict[str, Any]:
        """As the gateway forwards a user's request."""
        return identity_headers(self.runtime, principal)

    def service_headers(self, name: str = "gateway") -> dict[str, Any]:
        """As another Gala process calls an internal endpoint."""
        return {IDENTITY_HEADER: self.runtime.tokens.issue_for_service(name)}

    def new_venue(self) -> tuple[str, Principal]:
        """A venue no other test uses, and an ADMIN of it."""
        venue = unique_name("venue-")
        return venue, self.member(venue, Role.ADMIN)

    @staticmethod
    def member(venue: str, role: Role, user_id: str | None = None) -> Principal:
        """Someone of ``venue`` with ``role`` (as the gateway would vouch for them)."""
        return Principal(user_id=user_id or unique_name("user-"), venue_id=venue, role=role)

    async def call(
        self,
        method: str,
        path: str,
        principal: Principal,
        body: Any = None,
        headers: dict[str, str] | None = None,
        **params: Any,
    ) -> httpx.Response:
        """An API request as ``principal``, through the gateway's identity header."""
        return await self.client.request(
            method,
            path,
            json=body,
            params=params or None,
            headers={**self.headers(principal), **(headers or {})},
        )

    async def publish(self, event: Event, subject: str, event_id: str | None = None) -> str:
        """Publish ``event`` as another service would (see ``publish_event``)."""
        return await publish_event(self.runtime, event, subject, event_id)


S = TypeVar("S", bound=ServiceUnderTest)


@asynccontextmanager
async def own_database(definition: ServiceDefinition, infra: Settings) -> AsyncIterator[Settings]:
    """``isolated`` settings for ``definition``; its database is dropped afterwards."""
    settings = isolated(infra, definition.name)
    try:
        yield settings
    finally:
        store = Store(settings.mongo_url, settings.database_name(definition.name))
        await store.client.drop_database(settings.database_name(definition.name))
        await store.close()


@asynccontextmanager
async def running_service(
    definition: ServiceDefinition, settings: Settings, role: ProcessRole, kind: type[S]
) -> AsyncIterator[S]:
    """Serve ``definition`` in-process; a consuming role is ready to receive events."""
    app = create_app(definition, role, settings)
    async with serving(app) as client:
        if role.consumes:
            await wait_until_assigned(app.state.runtime)
        yield kind(app, client)


# --- services as processes -------------------------------------------------------------

GALA_CLI = Path(sys.executable).with_name("gala")
"""The ``gala`` command of the environment running the tests."""


@dataclass
class ServiceProcess:
    """``python -m <module>`` as a child process, as ``make dev`` and a cluster run it.

    ``start()`` returns once ``GET /health/ready`` answers 200 (and fails at once if the
    process exits first); ``stop()`` sends SIGTERM and waits; ``kill()`` sends SIGKILL
    (a crash: no shutdown, nothing flushed) and waits. It may be started again with the
    same environment after either. With ``log_file``, the process's output (stdout and
    stderr, every run appended) goes there; else it is discarded.
    """

    module: str
    env: dict[str, str]
    port: int
    args: Sequence[str] = ()
    log_file: Path | None = None
    ready_timeout: float = 60.0
    stop_timeout: float = 30.0
    child: asyncio.subprocess.Process | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.child is not None and self.child.returncode is None

    async def start(self) -> str:
        """Start the process and wait until it is ready; its base URL."""
        assert not self.alive, f"{self.module} is running already"
        if self.log_file is None:
            self.child = await self._spawn(asyncio.subprocess.DEVNULL)
        else:
            with self.log_file.open("ab") as output:  # the child keeps its own copy
                self.child = await self._spawn(output)
        try:
            await self._wait_ready(self.child)
        except BaseException:
            await self.kill()
            raise
        return self.url

    async def _spawn(self, output: Any) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            self.module,
            *self.args,
            env=self.env,
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
        )

    async def _wait_ready(self, child: asyncio.subprocess.Process) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=5) as client:

            async def ready() -> bool:
                if child.returncode is not None:
                    raise AssertionError(
                        f"{self.module} exited with {child.returncode} before it was ready"
                        f"{self._output_tail()}"
                    )
                try:
                    return (await client.get("/health/ready")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(ready, timeout=self.ready_timeout, interval=0.1)

    def _output_tail(self, size: int = 3000) -> str:
        if self.log_file is None or not self.log_file.exists():
            return ""
        return f"; its output ends with:\n{self.output()[-size:]}"

    def output(self) -> str:
        """What the process wrote so far (every run), if it writes to a ``log_file``."""
        if self.log_file is None or not self.log_file.exists():
            return ""
        return self.log_file.read_text(errors="replace")

    async def stop(self) -> int | None:
        """SIGTERM (if alive) and wait for the exit; its return code. A process that
        does not stop within ``stop_timeout`` is killed, and that is an error."""
        child = self.child
        if child is None:
            return None
        if child.returncode is None:
            child.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(child.wait(), self.stop_timeout)
        except TimeoutError:
            await self.kill()
            raise AssertionError(
                f"{self.module} did not stop within {self.stop_timeout}s of SIGTERM"
            ) from None

    async def kill(self) -> int | None:
        """SIGKILL (if alive) and wait for the exit: the process dies mid-work."""
        child = self.child
        if child is None:
            return None
        if child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                child.kill()
        return await child.wait()

    async def __aenter__(self) -> ServiceProcess:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


@asynccontextmanager
async def service_process(
    module: str,
    env: dict[str, str],
    port: int,
    *,
    args: Sequence[str] = (),
    log_file: Path | None = None,
) -> AsyncIterator[str]:
    """Run ``python -m <module>`` with ``env`` on ``port`` until the block ends (then
    SIGTERM and wait); yields its base URL once it is ready."""
    async with ServiceProcess(module, env, port, args, log_file):
        yield f"http://127.0.0.1:{port}"


async def gala_cli(env: dict[str, str], *args: str, timeout: float = 30.0) -> str:
    """Run the ``gala`` command (e.g. ``users add``, ``dev-token``); its output, stripped.
    A non-zero exit fails with what it wrote to stderr."""
    cli = await asyncio.create_subprocess_exec(
        str(GALA_CLI),
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(cli.communicate(), timeout)
    assert cli.returncode == 0, f"gala {' '.join(args)} failed: {err.decode()}"
    return out.decode().strip()


async def start_groups_at_end(
    bootstrap: str,
    group: str,
    topics: Iterable[str],
    *,
    partitions: int | None = None,
    replication_factor: int | None = None,
    timeout: float = 30.0,
) -> dict[TopicPartition, int]:
    """Make ``group`` start at the current end of every partition of ``topics``.

    Creates the topics that do not exist yet (with ``partitions`` and
    ``replication_factor``, by default the settings' ``GALA_TOPIC_PARTITIONS`` and
    ``GALA_TOPIC_REPLICATION_FACTOR``), then commits, for ``group``, each partition's end
    offset. A process started afterwards in that group (with
    ``GALA_CONSUMER_START_FROM=earliest``) reads everything published after this call,
    and nothing published before it (the shared topics' history from other tests and
    runs), without having to wait for its partition assignment. Answers the offsets
    committed.
    """
    wanted = sorted(set(topics))
    defaults = Settings()
    await ensure_topics(
        bootstrap,
        wanted,
        partitions=partitions or defaults.topic_partitions,
        replication_factor=replication_factor or defaults.topic_replication_factor,
    )
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        assigned: list[TopicPartition] = []
        for topic in wanted:
            count = await eventually(
                functools.partial(partition_count, bootstrap, topic), timeout=timeout
            )
            assigned += [TopicPartition(topic, n) for n in range(count)]
        consumer.assign(assigned)
        deadline = time.monotonic() + timeout
        while True:
            try:
                ends: dict[TopicPartition, int] = await consumer.end_offsets(assigned)
                await consumer.commit(ends)
                return ends
            except KafkaError:
                # a new topic's leaders or the group's coordinator are not known yet
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
    finally:
        await consumer.stop()


class StripeMockMissing(RuntimeError):
    """stripe-mock is not built (``make tools`` builds it; ``make test`` does so first)."""


def stripe_mock_binary() -> Path:
    """Where ``make tools`` put Stripe's API mock server (``GALA_STRIPE_MOCK`` names it)."""
    named = os.environ.get("GALA_STRIPE_MOCK")  # make exports it
    repo = Path(__file__).resolve().parents[3]
    built = sorted(repo.glob(".tools/stripe-mock-*/stripe-mock"))
    binary = Path(named) if named else (built[-1] if built else None)
    if binary is None or not binary.is_file():
        raise StripeMockMissing("stripe-mock is not installed: run `make tools` (make test does)")
    return binary


@asynccontextmanager
async def stripe_mock() -> AsyncIterator[str]:
    """Stripe's API mock server on a free loopback port, until the block ends; its URL.
    (Its API wants a valid-looking test key: ``sk_test_`` and letters or digits.)"""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        str(stripe_mock_binary()), "-http-port", str(port), "-https-port", str(free_port()),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as client:

            async def up() -> bool:
                assert process.returncode is None, "stripe-mock exited"
                try:
                    await client.get(url)
                except httpx.TransportError:
                    return False
                return True

            await eventually(up, timeout=30)
        yield url
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()


# --- bulk projections: an import's burst of contact events -----------------------------


class CommandCounter(monitoring.CommandListener):
    """Counts the commands clients made after ``monitoring.register`` send to one database."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.count = 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.database_name == self.database:
            self.count += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def a_run(
    store: Store, settings: Settings, events: Sequence[Event], start: datetime
) -> list[tuple[Event, EventContext]]:
    """``events`` as the consumer hands a batch handler a run of them (one partition,
    one second apart from ``start``)."""
    return [
        (
            event,
            EventContext(
                replace(envelope_of_event(event, subject), time=start + timedelta(seconds=n)),
                event.TOPIC,
                0,
                n,
                store,
                Outbox("test"),
                settings,
            ),
        )
        for n, (event, subject) in enumerate((e, str(getattr(e, "contact_id", ""))) for e in events)
    ]


@dataclass
class ContactBurst:
    """What :func:`contact_import_burst` made: the store, the venue, the contacts' ids and
    the commands the handler sent."""

    store: Store
    venue: str
    ids: list[str]
    commands: int


async def contact_import_burst(
    settings: Settings,
    handler: Callable[[list[tuple[Event, EventContext]]], Awaitable[None]],
    prepare: Callable[[Store, str, list[str], datetime], Awaitable[None]] | None = None,
    *,
    size: int = 50,
) -> ContactBurst:
    """An import's burst handed to a contact-copy batch handler as one run: ``size`` new
    contacts, then the first one renamed. ``prepare`` writes what the store held before."""
    database = unique_name("bulk_copies_")
    listener = CommandCounter(database)
    monitoring.register(listener)  # for the clients made from now on
    store = Store(settings.mongo_url, database)
    venue = unique_name("venue-")
    ids = [str(uuid.uuid4()) for _ in range(size)]

    def contact(kind: type[Event], contact_id: str, name: str, email: str) -> Event:
        return kind(  # type: ignore[call-arg]
            contact_id=contact_id, venue_id=venue, name=name, email=email,
            lead_source="WEBSITE", status="LEAD", lead_heat=10,
        )  # fmt: skip

    events = [
        contact(ContactCreated, c, f"Guest {n}", f"g{n}@wed.example") for n, c in enumerate(ids)
    ]
    events.append(contact(ContactUpdated, ids[0], "Renamed", "new@wed.example"))
    start = datetime.now(UTC)
    if prepare is not None:
        await prepare(store, venue, ids, start)
    before = listener.count
    await handler(a_run(store, settings, events, start))
    return ContactBurst(store, venue, ids, listener.count - before)
