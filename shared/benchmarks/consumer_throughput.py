"""How many events per second the kernel's consumer handles, beside raw aiokafka.

N events (default 100,000, by default each of its own record, as an import's are) are
produced to a fresh topic, then consumed from the start by three consumer groups, one
after the other, each until it has committed all of them (rates are taken from each
group's first commit to its last, without the process's start and the group's join):

- the kernel's consumer (``gala.events.EventConsumer``, as a worker runs it) with a
  trivial idempotent handler (one upsert per event);
- the kernel's consumer with a bulk projection (``Subscriptions.on_batch`` and
  ``gala.projections.keep_newest_many``: one bulk write per run of events);
- the baseline: a raw aiokafka consumer that inserts one document per event.

It also counts the store and broker round trips the kernel's consumer itself makes per
event (the processed-event lookups and inserts, the commits; one at a time it made
three per event: a ``find_one``, an ``insert_one`` and a commit).

Needs the local infrastructure (``make infra-up``): ``.venv/bin/python
shared/benchmarks/consumer_throughput.py --events 5000``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

os.environ.setdefault("GALA_DEV_MODE", "true")  # a benchmark runs on the local system

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from gala.app import ProcessRole, Runtime, ServiceDefinition
from gala.benchmarking import Figure, report
from gala.events import Envelope, Event, EventContext, Subscriptions
from gala.events.topics import consumer_group, ensure_topics
from gala.projections import Copy, keep_newest_many
from gala.settings import Settings
from gala.store import Store
from gala.testing import unique_name, wait_until_assigned


def event_type(tag: str) -> type[Event]:
    class ThingSeen(Event, type=f"gala.bench{tag}.seen.v1", topic=f"gala.bench{tag}.thing"):
        thing_id: str
        venue_id: str
        size: int

    return ThingSeen


async def produce(settings: Settings, kind: type[Event], events: int, things: int) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, acks="all", linger_ms=20
    )
    await producer.start()
    try:
        await producer.partitions_for(kind.TOPIC)  # a topic just made: its metadata first
        now = datetime.now(UTC)
        pending = []
        for n in range(events):
            thing = f"t-{n % things}"
            envelope = Envelope(
                id=str(uuid.uuid4()),
                type=kind.TYPE,
                source="/gala/bench",
                subject=thing,
                time=now,
                data=kind(thing_id=thing, venue_id="v", size=n).to_json(),  # type: ignore[call-arg]
                venueid="v",
            )
            pending.append(
                await producer.send(
                    kind.TOPIC, envelope.data, key=envelope.key, headers=envelope.headers()
                )
            )
            if len(pending) >= 1000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def committed_rate(settings: Settings, group: str, events: int, timeout: float) -> float:
    """Events per second that ``group`` commits, from its first commit to its last: the
    steady rate, without the process's start and the group's join (the baseline's rate
    is measured the same way). One admin client polls, so that polling costs little."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        deadline = time.monotonic() + timeout
        first: tuple[float, int] | None = None
        while True:
            offsets = await admin.list_consumer_group_offsets(group)
            committed: int = sum(meta.offset for meta in offsets.values() if meta.offset > 0)
            now = time.monotonic()
            if committed >= events and first is not None:
                return (committed - first[1]) / (now - first[0])
            if committed > 0 and first is None:
                first = (now, committed)
            if now > deadline:
                raise SystemExit(f"{group} did not commit {events} events within {timeout} s")
            await asyncio.sleep(0.1)
    finally:
        await admin.close()


async def kernel_run(
    settings: Settings, kind: type[Event], events: int, *, bulk: bool, timeout: float
) -> tuple[float, float]:
    """Events per second of the kernel's consumer, and its own round trips per event."""
    subscriptions = Subscriptions()
    if bulk:

        @subscriptions.on_batch(kind, name="things.copy")
        async def copy_many(batch: Sequence[tuple[Event, EventContext]]) -> None:
            copies = [
                Copy(e.thing_id, e.venue_id, {"size": e.size}, ctx.envelope.time)  # type: ignore[attr-defined]
                for e, ctx in batch
            ]
            await keep_newest_many(batch[0][1].store["things"], copies)

    else:

        @subscriptions.on(kind, name="things.upsert")
        async def upsert(event: Event, ctx: EventContext) -> None:
            await ctx.store["things"].update_one(
                {"_id": event.thing_id},  # type: ignore[attr-defined]
                {"$set": {"size": event.size}},  # type: ignore[attr-defined]
                upsert=True,
            )

    name = unique_name("bench")
    definition = ServiceDefinition(name=name, port=0, subscriptions=subscriptions)
    run_settings = settings.model_copy(update={"mongo_database": f"gala_{name}"})
    runtime = Runtime(definition, run_settings, ProcessRole.WORKER)
    await runtime.start()
    try:
        await wait_until_assigned(runtime)
        rate = await committed_rate(settings, consumer_group(name), events, timeout)
        consumer = runtime.consumer
        assert consumer is not None
        trips = consumer.round_trips
        per_event = (trips["lookups"] + trips["records"] + trips["commits"]) / max(
            trips["taken"], 1
        )
        await runtime.store.client.drop_database(runtime.store.db.name)
    finally:
        await runtime.stop()
    return rate, per_event


async def raw_run(settings: Settings, kind: type[Event], events: int, timeout: float) -> float:
    """The baseline: raw aiokafka consume and one insert per event."""
    store = Store(settings.mongo_url, unique_name("gala_bench_raw_"))
    consumer = AIOKafkaConsumer(
        kind.TOPIC,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=unique_name("bench-raw-"),
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        seen = 0
        deadline = time.monotonic() + timeout
        first: tuple[float, int] | None = None  # after its first batch, as the kernel's
        while seen < events:
            if time.monotonic() > deadline:
                raise SystemExit(f"the raw consumer did not read {events} events in time")
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    await store["things"].insert_one(
                        {"topic": record.topic, "offset": record.offset, "value": record.value}
                    )
                    seen += 1
            if seen and first is None:
                first = (time.monotonic(), seen)
        assert first is not None
        rate = (seen - first[1]) / (time.monotonic() - first[0])
    finally:
        await consumer.stop()
        await store.client.drop_database(store.db.name)
        await store.close()
    return rate


async def main(events: int, partitions: int, things: int, timeout: float) -> None:
    settings = Settings(topic_partitions=partitions)
    kind = event_type(unique_name(""))
    await ensure_topics(
        settings.kafka_bootstrap,
        [kind.TOPIC],
        partitions=partitions,
        replication_factor=settings.topic_replication_factor,
    )
    await produce(settings, kind, events, things)
    print(f"produced {events} events to {kind.TOPIC}", file=sys.stderr)
    raw = await raw_run(settings, kind, events, timeout)
    print(f"raw aiokafka: {raw:.0f} events/s", file=sys.stderr)
    trivial, trips = await kernel_run(settings, kind, events, bulk=False, timeout=timeout)
    print(f"kernel consumer: {trivial:.0f} events/s", file=sys.stderr)
    bulk, bulk_trips = await kernel_run(settings, kind, events, bulk=True, timeout=timeout)
    baseline = "raw aiokafka consume + one insert per event"
    report(
        "Event consumer throughput (one worker)",
        [
            Figure(
                "kernel consumer, trivial idempotent handler (an upsert)",
                trivial,
                "events/s",
                baseline=raw,
                baseline_name=baseline,
                goal_ratio=0.5,
            ),
            Figure(
                "kernel consumer, bulk projection (on_batch + keep_newest_many)",
                bulk,
                "events/s",
                baseline=raw,
                baseline_name=baseline,
                goal_value=2000,
            ),
            Figure(
                "kernel consumer's own round trips per event (trivial handler)",
                trips,
                "round trips/event",
                higher_is_better=False,
                note=f"bulk projection run: {bulk_trips:.3f}; one event at a time it made "
                "3 (a find_one, an insert_one, a commit)",
            ),
        ],
        scale=f"{events:,} events, {partitions} partitions, {things:,} keys",
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument(
        "--things",
        type=int,
        default=0,
        help="distinct keys (default: one per event, as an import's events are; fewer make "
        "most events changes of records already copied)",
    )
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per run")
    args = parser.parse_args()
    asyncio.run(main(args.events, args.partitions, args.things or args.events, args.timeout))
