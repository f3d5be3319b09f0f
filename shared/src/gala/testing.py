"""Helpers for tests that run on the real broker and store (every service's tests use them)."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import uvicorn
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from fastapi import FastAPI

from gala.app import ProcessRole, Runtime, ServiceDefinition, create_app
from gala.events.envelope import Envelope
from gala.events.model import Event
from gala.events.topics import partition_count
from gala.identity import IDENTITY_HEADER, Principal
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


async def publish_event(
    runtime: Runtime, event: Event, subject: str, event_id: str | None = None
) -> str:
    """Publish ``event`` as another service would (the same id twice = a redelivery)."""
    envelope = Envelope(
        id=event_id or str(uuid.uuid4()),
        type=event.TYPE,
        source="/gala/test",
        subject=subject,
        time=datetime.now(UTC),
        data=event.to_json(),
        venueid=getattr(event, "venue_id", None),
    )
    await runtime.publisher.publish(event.TOPIC, envelope)
    return envelope.id


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
