"""Guarantee 1: a state change and the event announcing it are never separated."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from kernel_samples import WidgetKit, settings_for
from pymongo.errors import DuplicateKeyError

from gala.app import ProcessRole, Runtime, ServiceDefinition
from gala.events.envelope import Envelope
from gala.events.outbox import OUTBOX, PENDING
from gala.store import Index
from gala.testing import eventually, read_topic, unique_name

KIT = Path(__file__).parent / "kit"


async def started(definition: ServiceDefinition, infra, **overrides) -> Runtime:
    settings = settings_for(infra, mongo_database=unique_name("gala_outbox_"), **overrides)
    runtime = Runtime(definition, settings, ProcessRole.API)
    await runtime.start()
    return runtime


async def test_an_event_written_before_a_crash_is_published_after_restart(infra):
    kit = WidgetKit(unique_name())
    database = unique_name("gala_outbox_")
    crashed = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, str(KIT / "crash_after_write.py"), kit.tag, "w-1", database],
        env={**os.environ, "GALA_MONGO_URL": infra.mongo_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert crashed.returncode == 137, crashed.stderr
    event_id = crashed.stdout.strip()

    runtime = Runtime(
        kit.definition(), settings_for(infra, mongo_database=database), ProcessRole.API
    )
    stored = await runtime.store["widgets"].find_one({"_id": "w-1"})
    assert stored is not None and stored[PENDING] is True  # written, not yet published

    await runtime.start()  # the process is back: its relay finds the pending event
    try:
        records = await read_topic(infra.kafka_bootstrap, kit.topic, count=1)
        assert len(records) == 1
        envelope = Envelope.from_kafka(records[0].headers, records[0].value)
        assert envelope.id == event_id
        assert envelope.subject == "w-1"
        assert records[0].key == b"w-1"
        assert kit.made.from_json(envelope.data) == kit.made(widget_id="w-1", size=3)

        async def relayed() -> bool:
            doc = await runtime.store["widgets"].find_one({"_id": "w-1"})
            return doc is not None and doc[OUTBOX] == [] and PENDING not in doc

        await eventually(relayed)
    finally:
        await runtime.stop()


async def test_a_failed_write_publishes_nothing(infra):
    kit = WidgetKit(unique_name())
    definition = kit.definition()
    runtime = await started(
        ServiceDefinition(
            **{**definition.__dict__, "indexes": [Index("widgets", [("sku", 1)], unique=True)]}
        ),
        infra,
    )
    try:
        widgets = runtime.store["widgets"]
        first = runtime.outbox.entry(kit.made(widget_id="a", size=1), subject="a", venue_id="v")
        await runtime.outbox.insert(widgets, {"_id": "a", "sku": "S1"}, [first])
        clash = runtime.outbox.entry(kit.made(widget_id="b", size=1), subject="b", venue_id="v")
        with pytest.raises(DuplicateKeyError):
            await runtime.outbox.insert(widgets, {"_id": "b", "sku": "S1"}, [clash])
        records = await read_topic(infra.kafka_bootstrap, kit.topic, count=2, timeout=5)
        assert [r.key for r in records] == [b"a"]
        assert await widgets.count_documents({}) == 1
    finally:
        await runtime.stop()


async def test_the_relay_wakes_right_after_a_local_write(infra):
    """With the safety-net poll set to a minute, only the wake-up can publish in time."""
    kit = WidgetKit(unique_name())
    runtime = await started(kit.definition(), infra, outbox_poll_interval_seconds=60)
    try:
        await asyncio.sleep(0.5)  # the relay has drained once and now sleeps for a minute
        entries = [
            runtime.outbox.entry(kit.made(widget_id="w", size=n), subject="w", venue_id="v")
            for n in range(3)
        ]
        await runtime.outbox.insert(runtime.store["widgets"], {"_id": "w"}, entries[:1])
        await runtime.outbox.update(
            runtime.store["widgets"], {"_id": "w"}, {"$set": {"size": 3}}, entries[1:]
        )
        records = await read_topic(infra.kafka_bootstrap, kit.topic, count=3, timeout=15)
        sizes = [kit.made.from_json(r.value).size for r in records]
        assert sizes == [0, 1, 2]  # one aggregate's events stay in order
    finally:
        await runtime.stop()


async def test_two_relays_never_lose_an_event(infra):
    """Two replicas relaying one collection publish every event, each once (the lease)."""
    kit = WidgetKit(unique_name())
    database = unique_name("gala_outbox_")
    settings = settings_for(infra, mongo_database=database)
    one = Runtime(kit.definition(), settings, ProcessRole.API)
    two = Runtime(kit.definition(), settings, ProcessRole.API)
    await one.start()
    await two.start()
    try:
        for i in range(40):
            writer = one if i % 2 else two
            entry = writer.outbox.entry(
                kit.made(widget_id=f"w{i}", size=i), subject=f"w{i}", venue_id="v"
            )
            await writer.outbox.insert(writer.store["widgets"], {"_id": f"w{i}"}, [entry])

        async def drained() -> bool:
            return await one.store["widgets"].count_documents({PENDING: True}) == 0

        await eventually(drained)
        records = await read_topic(infra.kafka_bootstrap, kit.topic, count=41, timeout=3)
        assert sorted(r.key for r in records) == sorted(f"w{i}".encode() for i in range(40))
    finally:
        await one.stop()
        await two.stop()
