"""Nothing is lost when a partners worker is SIGKILLed mid-stream.

Two worker processes on one database and consumer group. Worker A consumes a stream of
events and delivers them to a slow receiver; worker B starts, and A is SIGKILLed while
it holds claimed deliveries and uncommitted events. B takes A's partitions over (the
fan-out makes nothing twice) and A's claims when their leases run out: every event
reaches the receiver, and every delivery ends SUCCEEDED, one per event.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from gala.events.outbox import Outbox
from gala.settings import Settings
from gala.store import Store, utc_now
from gala.testing import (
    ServiceProcess,
    envelope_of_event,
    eventually,
    free_port,
    start_groups_at_end,
    unique_name,
)
from partners.bootstrap import service
from partners.deliveries.repository import COLLECTION
from partners.webhooks.domain import Endpoint
from partners.webhooks.repository import EndpointRepository

from .webhooks_support import Answer, receiver, won

pytestmark = pytest.mark.asyncio(loop_scope="session")
EVENTS = 40


async def test_a_sigkilled_worker_loses_no_delivery(infra: Settings, tmp_path: Path) -> None:
    database = unique_name("gala_partners_takeover_")
    group = unique_name("gala.partners.takeover-")
    await start_groups_at_end(infra.kafka_bootstrap, group, service.subscriptions.topics)
    store = Store(infra.mongo_url, database)
    venue = unique_name("venue-")
    env = {
        **os.environ,
        "GALA_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
        "GALA_MONGO_URL": infra.mongo_url,
        "GALA_MONGO_DATABASE": database,
        "GALA_CONSUMER_GROUP": group,
        "GALA_CONSUMER_START_FROM": "earliest",
        "GALA_WEBHOOK_ALLOW_HTTP": "true",
        "GALA_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
        "GALA_WEBHOOK_LEASE_SECONDS": "3",
        "GALA_WEBHOOK_TIMEOUT_SECONDS": "2",
        "GALA_WEBHOOK_TICK_SECONDS": "0.2",
        "GALA_WEBHOOK_RETRY_SCHEDULE": "[0.5, 0.5, 0.5, 0.5, 0.5, 0.5]",
        "GALA_WEBHOOK_RETRY_JITTER": "0",
    }
    workers = []
    for name in ("a", "b"):
        port = free_port()
        workers.append(
            ServiceProcess(
                "partners",
                {**env, "GALA_PARTNERS_PORT": str(port)},
                port,
                args=("--role", "worker"),
                log_file=tmp_path / f"{name}.log",
            )
        )
    a, b = workers
    producer = AIOKafkaProducer(
        bootstrap_servers=infra.kafka_bootstrap, acks="all", enable_idempotence=True
    )
    try:
        async with receiver(default=Answer(200, delay=0.4)) as r:
            endpoint = Endpoint.create(
                str(uuid.uuid4()), venue, r.url, ["gala.opportunity.*"], "", utc_now()
            )
            await EndpointRepository(store, Outbox("partners")).insert(endpoint)
            await a.start()
            await producer.start()
            published: list[str] = []
            for _ in range(EVENTS):
                event = won(venue)
                envelope = envelope_of_event(event, event.opportunity_id)
                await producer.send_and_wait(
                    event.TOPIC, envelope.data, key=envelope.key, headers=envelope.headers()
                )
                published.append(envelope.id)
            await r.wait_for(6, timeout=60)  # A is delivering
            assert await a.kill() == -9  # mid-stream: claims held, events uncommitted
            assert len(set(r.ids())) < EVENTS
            await b.start()  # takes A's partitions and, once their leases ran out, its claims

            async def every_event_arrived() -> bool:
                return set(r.ids()) >= set(published)

            await eventually(every_event_arrived, timeout=120, interval=0.5)
            deliveries = store[COLLECTION]

            async def all_succeeded() -> bool:
                n = await deliveries.count_documents({"status": "SUCCEEDED"})
                return n == EVENTS

            await eventually(all_succeeded, timeout=30)
            assert await deliveries.count_documents({}) == EVENTS
            assert set(r.ids()) == set(published)
            # what A had in flight when it died was attempted again (at least once)
            assert len(r.ids()) > len(set(r.ids()))
    finally:
        await producer.stop()
        for worker in (a, b):
            if worker.alive:
                await worker.stop()
        await store.client.drop_database(database)
        await store.close()
