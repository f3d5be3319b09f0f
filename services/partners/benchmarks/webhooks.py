"""Webhook deliveries: latency from publication to receipt, and throughput to 100
endpoints one of which never answers, beside a bare HTTP POST loop in the same run.

Runs the partners service in-process (the ``all`` role, default engine settings but for
allowing deliveries to 127.0.0.1 over http) on a throwaway database and consumer group
on ``GALA_KAFKA_BOOTSTRAP`` / ``GALA_MONGO_URL``, and real HTTP receivers on loopback:

- latency: one endpoint; an event is published (as another service would, waiting for
  Kafka's acknowledgement), and the time until the receiver has it is taken; one event
  at a time, ``LATENCY_EVENTS`` times: p50 and p99;
- throughput: 100 endpoints of one venue, one of which accepts the connection and never
  answers (each attempt to it waits for the 15 s timeout); ``BURST_EVENTS`` events make
  99 x ``BURST_EVENTS`` deliveries to the live ones: deliveries per second until the last
  arrives;
- baseline: the same number of bare signed-size POSTs to the same 99 live receivers from
  one httpx client with the engine's concurrency (64): what the receivers and this
  machine allow without Kafka, the store, leases and signing.

Run: ``.venv/bin/python services/partners/benchmarks/webhooks.py`` (needs ``make infra-up``).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gala.app import ProcessRole
from gala.benchmarking import Figure, report
from gala.contracts.pipeline import OpportunityWon
from gala.identity import Role
from gala.testing import (
    ServiceUnderTest,
    http_server,
    own_database,
    running_service,
    unique_name,
)
from partners.bootstrap import service
from partners.settings import PartnersSettings

LATENCY_EVENTS = int(os.environ.get("BENCH_LATENCY_EVENTS", "200"))
BURST_EVENTS = int(os.environ.get("BENCH_BURST_EVENTS", "40"))
ENDPOINTS = 100
CONCURRENCY = 64


class Receivers:
    """Live receivers (``/r/<n>``, 204 at once)."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.count = 0
        self.done = asyncio.Event()
        self.expected = 0

    def app(self) -> Starlette:
        async def live(request: Request) -> Response:
            await request.body()
            key = request.headers.get("webhook-id", "") + request.url.path
            self.arrived.setdefault(key, time.perf_counter())
            self.count += 1
            if self.expected and self.count >= self.expected:
                self.done.set()
            return Response(status_code=204)

        return Starlette(routes=[Route("/r/{n}", live, methods=["POST"])])

    def expect(self, count: int) -> None:
        self.count, self.expected = 0, count
        self.done.clear()


def won(venue: str) -> OpportunityWon:
    return OpportunityWon(
        opportunity_id=str(uuid.uuid4()), venue_id=venue, contact_id=str(uuid.uuid4()),
        name="Benchmark wedding", stage="contract sent", value=Decimal("1000.00"),
        currency="EUR", won_at=datetime.now(UTC),
    )  # fmt: skip


@asynccontextmanager
async def partners() -> AsyncIterator[ServiceUnderTest]:
    infra = PartnersSettings()
    async with own_database(service, infra) as base:
        settings = PartnersSettings(
            **{**dict(base), "webhook_allow_http": True, "webhook_allow_private_targets": True}
        )
        async with running_service(service, settings, ProcessRole.ALL, ServiceUnderTest) as s:
            yield s


async def add(s: ServiceUnderTest, venue: str, url: str) -> None:
    admin = s.member(venue, Role.ADMIN)
    body = {"url": url, "eventTypes": ["gala.opportunity.won.v1"]}
    response = await s.call("POST", "/api/v1/partners/webhooks", admin, body)
    assert response.status_code == 201, response.text


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def latency(s: ServiceUnderTest, receivers: Receivers, base: str) -> list[float]:
    venue = unique_name("venue-")
    await add(s, venue, f"{base}/r/latency")
    samples = []
    for _ in range(LATENCY_EVENTS):
        event = won(venue)
        receivers.expect(1)
        started = time.perf_counter()
        event_id = await s.publish(event, event.opportunity_id)
        await asyncio.wait_for(receivers.done.wait(), 30)
        samples.append(receivers.arrived[event_id + "/r/latency"] - started)
    return samples


@asynccontextmanager
async def dead_receiver() -> AsyncIterator[str]:
    """A port that accepts connections and never says a word."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/dead"
    finally:
        for writer in held:
            writer.close()
        server.close()


async def burst(
    s: ServiceUnderTest, receivers: Receivers, base: str, dead: str
) -> tuple[int, float]:
    venue = unique_name("venue-")
    for n in range(ENDPOINTS - 1):
        await add(s, venue, f"{base}/r/{n}")
    await add(s, venue, dead)
    deliveries = BURST_EVENTS * (ENDPOINTS - 1)
    receivers.expect(deliveries)
    started = time.perf_counter()
    for _ in range(BURST_EVENTS):
        event = won(venue)
        await s.publish(event, event.opportunity_id)
    await asyncio.wait_for(receivers.done.wait(), 600)
    return deliveries, time.perf_counter() - started


async def baseline(receivers: Receivers, base: str, count: int) -> float:
    body = json.dumps({"specversion": "1.0", "data": {"x": "y" * 400}}).encode()
    receivers.expect(count)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(count):
        queue.put_nowait(n)
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(limits=limits, timeout=15) as client:

        async def worker() -> None:
            while not queue.empty():
                n = queue.get_nowait()
                headers = {"webhook-id": f"base-{n}", "content-type": "application/json"}
                await client.post(f"{base}/r/{n % (ENDPOINTS - 1)}", content=body, headers=headers)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return time.perf_counter() - started


async def main() -> None:
    os.environ.setdefault("GALA_DEV_MODE", "true")  # a throwaway run: made-up secrets
    receivers = Receivers()
    async with http_server(receivers.app()) as base, dead_receiver() as dead, partners() as s:
        await latency(s, receivers, base)  # warm-up: connections, caches
        samples = await latency(s, receivers, base)
        count, took = await burst(s, receivers, base, dead)
        bare = await baseline(receivers, base, count)
    print(f"publication -> receipt, {len(samples)} events one at a time:")
    p50, p99 = percentile(samples, 0.5) * 1000, percentile(samples, 0.99) * 1000
    mean = statistics.mean(samples) * 1000
    print(f"  p50 {p50:.1f} ms   p99 {p99:.1f} ms   mean {mean:.1f} ms")
    print(f"{count} deliveries to {ENDPOINTS - 1} live endpoints (+1 that never answers):")
    print(f"  webhooks      {count / took:8.0f} deliveries/s  ({took:.1f} s)")
    print(f"  bare POSTs    {count / bare:8.0f} requests/s    ({bare:.1f} s, same receivers)")
    report(
        "Webhooks: publication to receipt, and deliveries to 100 endpoints",
        [
            Figure("publication -> receipt p50", p50, "ms", higher_is_better=False),
            Figure("publication -> receipt p99", p99, "ms", higher_is_better=False),
            Figure(
                "deliveries/s, 99 live endpoints + 1 that never answers",
                count / took,
                "/s",
                baseline=count / bare,
                baseline_name="bare HTTP POST loop, same receivers",
            ),
        ],
        scale=f"{len(samples)} events one at a time; a burst of {count}",
    )


if __name__ == "__main__":
    asyncio.run(main())
