"""SIGTERM drains a worker: it stops taking messages, finishes what it is handling,
commits exactly what it finished and leaves; the next worker loses and doubles nothing."""

import asyncio
import os
import signal
import sys
from pathlib import Path

from kernel_samples import WidgetKit, settings_for

from gala.app import ProcessRole, Runtime
from gala.testing import eventually, free_port, unique_name, wait_until_assigned

KIT = Path(__file__).parent / "kit"
EVENTS = 40


async def test_sigterm_mid_stream_loses_nothing_and_doubles_nothing(infra, tmp_path):
    kit = WidgetKit(unique_name())
    database = unique_name("gala_drain_")
    settings = settings_for(infra, mongo_database=database, topic_partitions=1)
    api = Runtime(kit.definition(), settings, ProcessRole.API)
    await api.start()  # creates the topic, one partition: the stream is handled in order
    try:
        for n in range(EVENTS):
            await api.publisher.publish(kit.topic, kit.envelope(f"w-{n}"))
    finally:
        await api.stop()

    env = {
        **os.environ,
        "GALA_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
        "GALA_MONGO_URL": infra.mongo_url,
        "GALA_MONGO_DATABASE": database,
        "GALA_TOPIC_PARTITIONS": "1",
    }
    log = (tmp_path / "worker.log").open("wb")
    worker = await asyncio.create_subprocess_exec(
        sys.executable, str(KIT / "draining_worker.py"), kit.tag, "0.25", str(free_port()),
        env=env, stdout=log, stderr=log,
    )  # fmt: skip
    probe = Runtime(kit.definition(), settings, ProcessRole.API)
    await probe.start()
    try:
        seen = probe.store["seen"]

        async def under_way() -> bool:
            assert worker.returncode is None, (tmp_path / "worker.log").read_text()[-3000:]
            return await seen.count_documents({}) >= 8

        await eventually(under_way, timeout=90)
        worker.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):  # in-flight work finishes within the 10 s grace
            # uvicorn shuts down cleanly, then re-raises the signal it caught: -SIGTERM
            assert await worker.wait() in (0, -signal.SIGTERM), (
                tmp_path / "worker.log"
            ).read_text()[-3000:]
        drained = {doc["widget"] async for doc in seen.find({}, {"widget": 1})}
        assert 8 <= len(drained) < EVENTS  # it stopped mid-stream

        successor = Runtime(kit.definition(), settings, ProcessRole.WORKER)
        await successor.start()
        await wait_until_assigned(successor)
        try:

            async def all_counted() -> bool:
                return await probe.store["counts"].count_documents({}) == EVENTS

            await eventually(all_counted, timeout=60)
            counts = {doc["_id"]: doc["n"] async for doc in probe.store["counts"].find({})}
            assert counts == {f"w-{n}": 1 for n in range(EVENTS)}  # 0 lost, 0 doubled
            # what the first worker finished it committed: none of it was delivered again
            again = {
                doc["widget"]
                async for doc in seen.find({"pid": {"$ne": worker.pid}}, {"widget": 1})
            }
            assert not drained & again, f"finished work delivered again: {drained & again}"
        finally:
            await successor.stop()
    finally:
        await probe.stop()
        if worker.returncode is None:
            worker.kill()
            await worker.wait()
