"""Guarantees 2, 3 and 7: idempotent handling, commit after effect, poison to dead letters."""

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kernel_samples import WidgetKit, settings_for

from gala.app import ProcessRole, Runtime
from gala.events import Envelope, consumer_group, dead_letter_topic
from gala.testing import committed_offsets, eventually, read_topic, unique_name, wait_until_assigned

KIT = Path(__file__).parent / "kit"


async def worker(kit: WidgetKit, infra, database: str | None = None, **overrides) -> Runtime:
    settings = settings_for(
        infra, mongo_database=database or unique_name("gala_consumer_"), **overrides
    )
    runtime = Runtime(kit.definition(), settings, ProcessRole.WORKER)
    await runtime.start()
    await wait_until_assigned(runtime)
    return runtime


async def count_of(runtime: Runtime, widget_id: str) -> int:
    doc = await runtime.store["counts"].find_one({"_id": widget_id})
    return doc["n"] if doc else 0


async def test_the_same_event_delivered_three_times_has_its_effect_once(infra):
    kit = WidgetKit(unique_name())
    runtime = await worker(kit, infra)
    try:
        duplicate = kit.envelope("w-1", event_id="the-one-event")
        for _ in range(3):
            await runtime.publisher.publish(kit.topic, duplicate)
        group = consumer_group(kit.tag)
        await eventually(lambda: _equals(committed_offsets(infra.kafka_bootstrap, group), 3))
        assert await count_of(runtime, "w-1") == 1
        assert kit.seen.qsize() == 1  # the handler itself ran once
    finally:
        await runtime.stop()


async def test_a_handler_that_crashes_midway_sees_the_message_again_after_restart(infra):
    kit = WidgetKit(unique_name())
    database = unique_name("gala_consumer_")
    await _create_topics(kit, infra, database)
    await _publish_one(kit, infra, database, kit.envelope("w-1"))

    crashed = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, str(KIT / "crashing_worker.py"), kit.tag, database],
        env={
            **os.environ,
            "GALA_MONGO_URL": infra.mongo_url,
            "GALA_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
        },
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert crashed.returncode == 137, crashed.stderr[-2000:]

    runtime = await worker(kit, infra, database)
    try:
        await eventually(lambda: _equals(count_of(runtime, "w-1"), 1))
        # seen once by the process that crashed, once more after the restart
        assert await runtime.store["seen"].count_documents({"widget": "w-1"}) == 2
    finally:
        await runtime.stop()


async def test_a_poison_message_goes_to_the_dead_letter_topic_and_the_next_is_handled(infra):
    kit = WidgetKit(unique_name())
    runtime = await worker(kit, infra, topic_partitions=1)
    try:
        await runtime.publisher.publish_raw(
            kit.topic, b"w-0", b"\x00 not an event", [("ce_specversion", b"1.0")]
        )
        await runtime.publisher.publish(kit.topic, kit.envelope("w-1"))
        await eventually(lambda: _equals(count_of(runtime, "w-1"), 1))

        (dead,) = await read_topic(infra.kafka_bootstrap, dead_letter_topic(kit.tag), count=1)
        headers = dict(dead.headers)
        assert dead.value == b"\x00 not an event"  # the original, untouched
        assert dead.key == b"w-0"
        assert b"MalformedEnvelope" in headers["gala_dlq_error"]
        assert headers["gala_dlq_topic"] == kit.topic.encode()
        assert headers["gala_dlq_offset"] == b"0"
        assert headers["gala_dlq_attempts"] == b"1"
    finally:
        await runtime.stop()


async def test_a_handler_that_keeps_failing_is_retried_then_dead_lettered(infra):
    kit = WidgetKit(unique_name())
    runtime = await worker(kit, infra, topic_partitions=1, consumer_max_attempts=3)
    try:
        failing = kit.envelope("bad-1")
        await runtime.publisher.publish(kit.topic, failing)
        await runtime.publisher.publish(kit.topic, kit.envelope("w-2"))
        await eventually(lambda: _equals(count_of(runtime, "w-2"), 1))

        (dead,) = await read_topic(infra.kafka_bootstrap, dead_letter_topic(kit.tag), count=1)
        headers = dict(dead.headers)
        assert headers["ce_id"] == failing.id.encode()  # still a readable CloudEvent
        assert headers["gala_dlq_handler"] == b"count"
        assert headers["gala_dlq_attempts"] == b"3"
        assert b"cannot count bad-1" in headers["gala_dlq_error"]
        assert await runtime.store["seen"].count_documents({"widget": "bad-1"}) == 3
        assert await count_of(runtime, "bad-1") == 0
    finally:
        await runtime.stop()


async def test_a_transient_failure_is_retried_and_handled_once(infra):
    kit = WidgetKit(unique_name(), fail_times=2)
    runtime = await worker(kit, infra, consumer_max_attempts=3)
    try:
        await runtime.publisher.publish(kit.topic, kit.envelope("w-1"))
        await eventually(lambda: _equals(count_of(runtime, "w-1"), 1))
        assert await runtime.store["seen"].count_documents({"widget": "w-1"}) == 3
        records = await read_topic(
            infra.kafka_bootstrap, dead_letter_topic(kit.tag), count=1, timeout=2
        )
        assert records == []
    finally:
        await runtime.stop()


async def test_events_of_types_nobody_handles_are_skipped(infra):
    kit = WidgetKit(unique_name())
    runtime = await worker(kit, infra, topic_partitions=1)
    try:
        stranger = kit.envelope("w-0")
        stranger = Envelope(**{**stranger.__dict__, "type": f"gala.w{kit.tag}.melted.v1"})
        await runtime.publisher.publish(kit.topic, stranger)
        await runtime.publisher.publish(kit.topic, kit.envelope("w-1"))
        await eventually(lambda: _equals(count_of(runtime, "w-1"), 1))
        assert await count_of(runtime, "w-0") == 0
    finally:
        await runtime.stop()


async def _equals(value, expected) -> bool:
    return await value == expected


async def _create_topics(kit: WidgetKit, infra, database: str) -> None:
    runtime = Runtime(
        kit.definition(), settings_for(infra, mongo_database=database), ProcessRole.API
    )
    await runtime.start()
    await runtime.stop()


async def _publish_one(kit: WidgetKit, infra, database: str, event: Envelope) -> None:
    runtime = Runtime(
        kit.definition(), settings_for(infra, mongo_database=database), ProcessRole.API
    )
    await runtime.start()
    try:
        await runtime.publisher.publish(kit.topic, event)
    finally:
        await runtime.stop()


async def test_processed_records_are_pruned_after_their_retention(infra):
    kit = WidgetKit(unique_name())
    runtime = await worker(kit, infra)
    try:
        await runtime.publisher.publish(kit.topic, kit.envelope("w-1"))
        await eventually(lambda: _equals(count_of(runtime, "w-1"), 1))
        consumer = runtime.consumer
        assert consumer is not None
        assert await consumer.forget_processed_before(datetime.now(UTC) - timedelta(days=1)) == 0
        assert await consumer.forget_processed_before(datetime.now(UTC) + timedelta(seconds=1)) == 1
    finally:
        await runtime.stop()
