"""How long the death of one of three worker replicas pauses the others' event handling.

Three worker processes of one consumer group (``gala.app.run``, as production runs a
service) read a three-partition topic that receives a steady stream of events. After a
while one of them is stopped, by SIGTERM (a drain: it leaves the group) or by SIGKILL (it
just stops heartbeating). The figure is the longest time an event published after the stop
waited to be handled (events on the stopped replica's partitions wait for the group to give
them to another), beside the longest wait while all three ran (the baseline, same run),
with Kafka's client defaults (session 10 s, heartbeat 3 s) and with Gala's settings
(``GALA_CONSUMER_SESSION_TIMEOUT_MS`` 6 s, ``GALA_CONSUMER_HEARTBEAT_INTERVAL_MS`` 1 s).

Needs the local infrastructure (``make infra-up``): ``.venv/bin/python
shared/benchmarks/consumer_pause.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from pathlib import Path

KIT = Path(__file__).resolve().parents[1] / "tests" / "integration" / "kit"
sys.path.insert(0, str(KIT))
os.environ.setdefault("GALA_DEV_MODE", "true")  # a benchmark runs on the local system


from kernel_samples import WidgetKit  # noqa: E402

from gala.app import ProcessRole, Runtime  # noqa: E402
from gala.benchmarking import Figure, report  # noqa: E402
from gala.settings import Settings  # noqa: E402
from gala.store import Store  # noqa: E402
from gala.testing import free_port, unique_name  # noqa: E402

CONFIGS = {
    "kafka client defaults": {"GALA_CONSUMER_SESSION_TIMEOUT_MS": "10000",
                              "GALA_CONSUMER_HEARTBEAT_INTERVAL_MS": "3000"},
    "gala settings": {},
}  # fmt: skip


async def one_run(
    infra: Settings, config: dict[str, str], stop: signal.Signals, rate: float, seconds: float
) -> tuple[float, float]:
    """(longest wait while three ran, longest wait after one was stopped), in seconds."""
    kit = WidgetKit(unique_name())
    database = unique_name("gala_pause_")
    settings = infra.model_copy(update={"mongo_database": database, "topic_partitions": 3})
    api = Runtime(kit.definition(), settings, ProcessRole.API)
    await api.start()
    env = {**os.environ, "GALA_MONGO_DATABASE": database, "GALA_TOPIC_PARTITIONS": "3",
           "GALA_KAFKA_BOOTSTRAP": infra.kafka_bootstrap, "GALA_MONGO_URL": infra.mongo_url,
           "GALA_LOG_LEVEL": "WARNING", **config}  # fmt: skip
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            str(KIT / "draining_worker.py"),
            kit.tag,
            "0",
            str(free_port()),
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        for _ in range(3)
    ]
    store = Store(infra.mongo_url, database)
    try:
        await asyncio.sleep(8)  # all three joined and settled
        started = time.time()
        stopped_at = started + seconds / 2
        stopped = False
        published: dict[str, float] = {}
        while time.time() < started + seconds:
            widget = f"w-{len(published)}"
            published[widget] = time.time()
            await api.publisher.publish(kit.topic, kit.envelope(widget))
            if not stopped and time.time() >= stopped_at:
                workers[0].send_signal(stop)
                stopped = True
            await asyncio.sleep(1 / rate)
        await asyncio.sleep(15)  # let the group settle and catch up
        handled: dict[str, float] = {}
        async for doc in store["seen"].find({}, {"at": 1, "widget": 1}):
            handled.setdefault(doc["widget"], doc["at"])  # the first time it was handled
        waits = {w: handled.get(w, float("inf")) - at for w, at in published.items()}
        before = [wait for w, wait in waits.items() if published[w] < stopped_at]
        after = [wait for w, wait in waits.items() if published[w] >= stopped_at]
        return max(before), max(after)
    finally:
        for worker in workers:
            if worker.returncode is None:
                worker.kill()
            await worker.wait()
        await api.stop()
        await store.client.drop_database(database)
        await store.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=40.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=24.0, help="length of a run")
    args = parser.parse_args()
    infra = Settings()
    print(f"{'settings':24} {'stop':8} {'longest wait, 3 running':>24} {'after the stop':>15}")
    waits: dict[tuple[str, str], float] = {}
    for name, config in CONFIGS.items():
        for stop in (signal.SIGTERM, signal.SIGKILL):
            before, after = await one_run(infra, config, stop, args.rate, args.seconds)
            print(f"{name:24} {stop.name:8} {before:23.2f}s {after:14.2f}s", flush=True)
            waits[name, stop.name] = after
    defaults, gala = "kafka client defaults", "gala settings"
    report(
        "Consumers: how long one of three replicas stopping makes events wait",
        [
            Figure(
                f"longest wait after a {stop}, {gala}",
                waits[gala, stop],
                "s",
                baseline=waits[defaults, stop],
                baseline_name=defaults,
                higher_is_better=False,
            )
            for stop in ("SIGTERM", "SIGKILL")
        ],
        scale=f"{args.rate:g} events/s for {args.seconds:g} s",
    )


if __name__ == "__main__":
    asyncio.run(main())
