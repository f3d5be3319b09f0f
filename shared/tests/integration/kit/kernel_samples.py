"""A tiny domain for the kernel's integration tests: widgets, counted by events.

Each test builds its own event types and topics (``WidgetKit(tag)``), so tests never
see each other's messages; a subprocess rebuilds the same kit from the same tag.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from pymongo import UpdateOne

from gala.app import ServiceDefinition
from gala.events import Envelope, Event, EventContext, Subscriptions
from gala.settings import Settings
from gala.tracing import current_trace_ids


@dataclass
class WidgetKit:
    tag: str
    fail_times: int = 0
    crash: bool = False
    delay: float = 0.0
    """Seconds each event takes to handle, between its two writes (an in-flight handler
    that is cut short leaves the first without the second)."""
    idempotent: bool = False
    """Count each event id once (as a real handler's effect is idempotent by itself),
    recording every event id counted, instead of a plain increment."""
    batched: bool = False
    """Count with a batch handler (``Subscriptions.on_batch``): one bulk write per run."""
    subscriptions: Subscriptions = field(default_factory=Subscriptions)

    def __post_init__(self) -> None:
        class WidgetMade(Event, type=f"gala.w{self.tag}.made.v1", topic=f"gala.{self.tag}.widget"):
            widget_id: str
            size: int

        self.made = WidgetMade
        self.topic = WidgetMade.TOPIC
        self.seen = asyncio.Queue()  # type: ignore[var-annotated]
        self.failures_left = self.fail_times
        self.in_flight = 0
        self.most_in_flight = 0
        """The most handlers that ran at once (partitions handled concurrently)."""
        self.batches: list[int] = []
        """The size of each call of the batch handler."""
        if self.batched:
            self.subscriptions.on_batch(WidgetMade, name="count")(self._count_many)
        else:
            self.subscriptions.on(WidgetMade, name="count")(self._count)

    async def _count(self, event: Any, ctx: EventContext) -> None:
        """Counts widgets; ``bad*`` widgets always fail, others fail ``fail_times`` first."""
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await self.seen.put((event, ctx, current_trace_ids()))
            await ctx.store["seen"].insert_one(self._seen(event, ctx))
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.crash:
                os._exit(137)  # dies mid-handler, as a killed process would
            if event.widget_id.startswith("bad"):
                raise RuntimeError(f"cannot count {event.widget_id}")
            if self.failures_left > 0:
                self.failures_left -= 1
                raise RuntimeError("widget counter is flaky")
            if self.idempotent:
                await ctx.store["counts"].bulk_write(self._count_once(event, ctx))
                return
            await ctx.store["counts"].update_one(
                {"_id": event.widget_id}, {"$inc": {"n": 1}}, upsert=True
            )
        finally:
            self.in_flight -= 1

    async def _count_many(self, batch: Sequence[tuple[Any, EventContext]]) -> None:
        """One bulk write per run of events; a run with a ``bad*`` widget fails whole
        (and then each of its events fails or succeeds alone)."""
        self.batches.append(len(batch))
        store = batch[0][1].store
        await store["seen"].insert_many([self._seen(event, ctx) for event, ctx in batch])
        for event, ctx in batch:
            await self.seen.put((event, ctx, current_trace_ids()))
        if any(event.widget_id.startswith("bad") for event, _ in batch):
            raise RuntimeError("cannot count a bad widget")
        writes = [write for event, ctx in batch for write in self._count_once(event, ctx)]
        await store["counts"].bulk_write(writes, ordered=True)

    @staticmethod
    def _seen(event: Any, ctx: EventContext) -> dict[str, Any]:
        return {
            "widget": event.widget_id,
            "size": event.size,
            "event": ctx.envelope.id,
            "partition": ctx.partition,
            "pid": os.getpid(),
            "at": time.time(),
        }

    @staticmethod
    def _count_once(event: Any, ctx: EventContext) -> list[UpdateOne]:
        """Count the event once per id (an idempotent effect): a redelivery finds it."""
        return [
            UpdateOne(
                {"_id": event.widget_id}, {"$setOnInsert": {"n": 0, "events": []}}, upsert=True
            ),
            UpdateOne(
                {"_id": event.widget_id, "events": {"$ne": ctx.envelope.id}},
                {"$inc": {"n": 1}, "$push": {"events": ctx.envelope.id}},
            ),
        ]

    def envelope(self, widget_id: str, event_id: str | None = None, size: int = 1) -> Envelope:
        """A widget's made event as another process would publish it."""
        return Envelope(
            id=event_id or f"evt-{uuid.uuid4().hex[:12]}",
            type=self.made.TYPE,
            source="/gala/test",
            subject=widget_id,
            time=datetime.now(UTC),
            data=self.made(widget_id=widget_id, size=size).to_json(),
            venueid="venue-1",
        )

    def definition(self, name: str | None = None) -> ServiceDefinition:
        router = APIRouter()
        kit = self

        @router.post("/widgets/{widget_id}")
        async def make(widget_id: str, request: Request) -> dict[str, str]:
            runtime = request.app.state.runtime
            entry = runtime.outbox.entry(
                kit.made(widget_id=widget_id, size=1), subject=widget_id, venue_id="venue-1"
            )
            await runtime.outbox.insert(runtime.store["widgets"], {"_id": widget_id}, [entry])
            return {"id": widget_id}

        return ServiceDefinition(
            name=name or self.tag,
            port=0,
            routers=[router],
            subscriptions=self.subscriptions,
            publishes=[self.made],
            outbox_collections=["widgets"],
        )


def settings_for(infra: Settings, **overrides: Any) -> Settings:
    values = {
        "kafka_bootstrap": infra.kafka_bootstrap,
        "mongo_url": infra.mongo_url,
        "consumer_backoff_initial_seconds": 0.01,
        "consumer_backoff_max_seconds": 0.05,
        "consumer_max_attempts": 3,
        **overrides,
    }
    return Settings(**values)
