"""The real broker and store answer, and behave as the kernel relies on."""

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pymongo.errors import DuplicateKeyError

from gala.events.topics import ensure_topics
from gala.store import Index, Store
from gala.testing import eventually, unique_name


async def test_three_partition_topic_through_a_consumer_group(infra):
    topic = f"gala.{unique_name()}.smoke"
    created = await ensure_topics(
        infra.kafka_bootstrap, [topic], partitions=3, replication_factor=1
    )
    assert created == [topic]
    assert (
        await ensure_topics(infra.kafka_bootstrap, [topic], partitions=3, replication_factor=1)
        == []
    )  # idempotent

    producer = AIOKafkaProducer(
        bootstrap_servers=infra.kafka_bootstrap, acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        for i in range(30):
            await producer.send_and_wait(topic, f"m{i}".encode(), key=f"k{i % 7}".encode())
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=infra.kafka_bootstrap,
        group_id=unique_name("group-"),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        received: list[bytes] = []
        partitions: set[int] = set()

        async def all_received() -> bool:
            batches = await consumer.getmany(timeout_ms=200)
            for tp, records in batches.items():
                partitions.add(tp.partition)
                received.extend(r.value for r in records)
            return len(received) >= 30

        await eventually(all_received, timeout=30)
        assert sorted(received) == sorted(f"m{i}".encode() for i in range(30))
        assert partitions == {0, 1, 2}
        assert len(consumer.partitions_for_topic(topic) or ()) == 3
    finally:
        await consumer.stop()


async def test_store_answers_hello_and_enforces_unique_indexes(infra):
    store = Store(infra.mongo_url, unique_name("gala_smoke_"))
    try:
        hello = await store.db.command("hello")
        assert hello["ok"] == 1
        await store.ensure_indexes([Index("people", [("email", 1)], unique=True)])
        await store["people"].insert_one({"email": "a@example.com"})
        with pytest.raises(DuplicateKeyError):
            await store["people"].insert_one({"email": "a@example.com"})
        assert await store["people"].count_documents({}) == 1
    finally:
        await store.client.drop_database(store.db.name)
        await store.close()


async def test_auto_topic_creation_is_off(infra):
    """Topics exist only when the kernel creates them."""
    topic = f"gala.{unique_name()}.never"
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap, request_timeout_ms=3000)
    await producer.start()
    try:
        with pytest.raises(Exception):  # noqa: B017 - aiokafka raises a timeout here
            await asyncio.wait_for(producer.send_and_wait(topic, b"x"), 8)
    finally:
        await producer.stop()
