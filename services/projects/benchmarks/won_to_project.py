"""Benchmark (not a test): from a won opportunity to its project's created event.

Runs the pipeline and projects services as processes (``python -m pipeline``,
``python -m projects``, as ``make dev`` runs them) on ``GALA_KAFKA_BOOTSTRAP`` and
``GALA_MONGO_URL``, each with a database of its own and a consumer group of its own that
starts at the end of the topics it reads. It seeds a venue whose contact the pipeline
knows (written into the pipeline's contact projection, as its integration tests do),
creates N WEDDING opportunities (untimed), then wins them one after another at a steady
pace (``--rate`` per second, not waiting for the projects), and measures for each:

- latency: from the answer to ``POST /api/v1/opportunities/{id}/win`` to the moment the
  project's ``gala.project.created.v1`` event is readable on ``gala.projects.project``
  (read by a plain consumer in this process). In between: the pipeline's outbox relay
  publishes the won event, the projects service consumes it, stores the project with
  its tasks and events (its outbox), and its relay publishes them: two trips through
  Kafka and two through the store;
- throughput: won opportunities turned into projects per second, from the first win's
  answer to the last project's event.

As a baseline, measured in the same run on the same broker with the same number of
samples at the same pace: one message produced (``send_and_wait``) and read back by
the same kind of consumer, from just before the send to its arrival, on a topic of its
own (deleted at the end). It prints p50/p99/max of both, and their ratio.

Then the saturation of one projects replica: a burst of ``--burst`` won events (of a
venue of its own) published at once, as the pipeline would, and the time until the
projects service announced all their projects: projects per second. Its baseline, same run:
the same number of bare messages produced at once and consumed by a plain consumer
(messages per second through the broker alone).

    cd /work/main && make infra-up        # and export the GALA_... lines it prints
    .venv/bin/python services/projects/benchmarks/won_to_project.py [--count 200] [--rate 10]
        [--burst 2000]

pytest does not collect it (no ``test_`` name). Its databases are dropped at the end;
the events it causes go to the shared topics as usual; the two processes' output goes
to a temporary folder, printed if they fail.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from gala.benchmarking import Figure
from gala.benchmarking import report as report_figures
from gala.contracts.pipeline import OPPORTUNITY_TOPIC, OpportunityWon
from gala.contracts.projects import PROJECT_TOPIC, ProjectCreated
from gala.events.model import Event
from gala.events.topics import ensure_topics
from gala.identity import IDENTITY_HEADER, InternalTokens, Principal, Role
from gala.settings import Settings
from gala.store import Store
from gala.testing import (
    ServiceProcess,
    envelope_of_event,
    free_port,
    start_groups_at_end,
    unique_name,
)
from pipeline.bootstrap import service as pipeline_service
from pipeline.contacts.repository import ContactCopyRepository
from projects.bootstrap import service as projects_service
from projects.projects.domain import project_id_for

# A benchmark runs on the local system, in its explicit dev mode (made-up secrets).
os.environ.setdefault("GALA_DEV_MODE", "true")

EVENT_DATE = "2027-06-12T15:00:00Z"
SAME_CREATION = timedelta(milliseconds=50)
"""A ProjectCreated event is this service's when its ``ce_time`` (when its outbox entry
was recorded) follows the stored project's ``createdAt`` by at most this much. Other
projects services (tests, other runs, each with a group of its own) read the same won
events and publish the same event ids, at other times."""


@dataclass(frozen=True)
class Copy:
    """One arrival of an event."""

    arrived: float
    """``perf_counter`` when this process could read it."""
    event_id: str
    stamped: datetime | None
    """Its ``ce_time``: when its producer recorded it."""


@dataclass
class Arrivals:
    """Every arrival of the awaited events on a topic (read from its end at ``start``),
    by key."""

    bootstrap: str
    topic: str
    key_of: Callable[[dict[str, bytes], bytes | None], str | None]
    copies: dict[str, list[Copy]] = field(default_factory=dict)
    _consumer: AIOKafkaConsumer | None = None
    _task: asyncio.Task[None] | None = None

    async def start(self, partitions: int) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await consumer.start()
        assigned = [TopicPartition(self.topic, n) for n in range(partitions)]
        consumer.assign(assigned)
        for partition, offset in (await consumer.end_offsets(assigned)).items():
            consumer.seek(partition, offset)
        for partition in assigned:  # resolve the positions before anything is published
            await consumer.position(partition)
        self._consumer = consumer
        self._task = asyncio.create_task(self._read(consumer))

    async def _read(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=1000)
            now = time.perf_counter()
            for records in batches.values():
                for record in records:
                    headers = dict(record.headers)
                    key = self.key_of(headers, record.value)
                    if key is None:
                        continue
                    stamped = headers.get("ce_time")
                    self.copies.setdefault(key, []).append(
                        Copy(
                            now,
                            headers.get("ce_id", b"").decode(),
                            datetime.fromisoformat(stamped.decode()) if stamped else None,
                        )
                    )

    def first(self, key: str) -> float:
        return min(copy.arrived for copy in self.copies[key])

    async def wait_for(
        self, ready: Callable[[], bool], timeout: float, what: str = "events"
    ) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if self._task is not None and self._task.done():
                self._task.result()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} did not arrive within {timeout}s")
            await asyncio.sleep(0.05)

    def have(self, keys: set[str]) -> Callable[[], bool]:
        return lambda: keys <= self.copies.keys()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer is not None:
            await self._consumer.stop()


def subject_of(event_type: type[Event]) -> Callable[[dict[str, bytes], bytes | None], str | None]:
    """The subject of the events of ``event_type``; ``None`` for the rest."""
    wanted = event_type.TYPE.encode()

    def key(headers: dict[str, bytes], _: bytes | None) -> str | None:
        if headers.get("ce_type") != wanted:
            return None
        return headers.get("ce_subject", b"").decode() or None

    return key


def the_value(_: dict[str, bytes], value: bytes | None) -> str | None:
    return value.decode() if value else None


def summary(name: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    return (
        f"{name:<38} p50 {statistics.median(ordered):7.1f} ms   p99 {p99(ordered):7.1f} ms"
        f"   max {ordered[-1]:7.1f} ms   ({len(samples)} samples)"
    )


def p99(ordered: list[float]) -> float:
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


async def paced(count: int, rate: float, step: Callable[[int], Awaitable[None]]) -> None:
    """``step(0)`` ... ``step(count - 1)``, one after another, started ``1/rate`` s apart
    (or at once after a step that took longer)."""
    start = time.perf_counter()
    for n in range(count):
        delay = start + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await step(n)


async def baseline(settings: Settings, count: int, rate: float) -> list[float]:
    """Produce -> consume round trips of one message each, on a topic of its own."""
    topic = unique_name("gala.bench.roundtrip-")
    await ensure_topics(settings.kafka_bootstrap, [topic], partitions=1, replication_factor=1)
    arrivals = Arrivals(settings.kafka_bootstrap, topic, the_value)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    sent: dict[str, float] = {}
    try:
        await arrivals.start(partitions=1)
        await producer.send_and_wait(topic, b"warm-up")
        await arrivals.wait_for(arrivals.have({"warm-up"}), timeout=30)

        async def one(n: int) -> None:
            sent[str(n)] = time.perf_counter()
            await producer.send_and_wait(topic, str(n).encode())

        await paced(count, rate, one)
        await arrivals.wait_for(arrivals.have(set(sent)), timeout=60)
        return [(arrivals.first(key) - sent[key]) * 1000 for key in sent]
    finally:
        await producer.stop()
        await arrivals.stop()
        await delete_topic(settings, topic)


async def delete_topic(settings: Settings, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([topic])
    finally:
        await admin.close()


@dataclass(frozen=True)
class Result:
    total: list[float]
    """From the win's answer to the project's created event, in the order of the wins."""
    pipeline: list[float]
    """From the win's answer to the won event."""
    projects: list[float]
    """From the won event to the project's created event."""
    throughput: float
    """Projects per second, from the first win's answer to the last project's event."""
    republished: int
    """Projects whose created event this projects service published more than once."""
    foreign: int
    """Projects whose created event some other projects service also published."""


@dataclass
class Pipeline:
    http: httpx.AsyncClient
    tokens: InternalTokens
    admin: Principal

    async def call(self, method: str, path: str, json: object = None) -> httpx.Response:
        headers = {IDENTITY_HEADER: self.tokens.issue(self.admin)}
        return await self.http.request(method, path, json=json, headers=headers)

    async def new_opportunity(self, contact_id: str, n: int) -> str:
        body = {
            "name": f"Wedding {n}",
            "contactId": contact_id,
            "eventType": "WEDDING",
            "eventDate": EVENT_DATE,
            "guestCount": 120,
            "value": "12000.00",
        }
        response = await self.call("POST", "/api/v1/opportunities", body)
        assert response.status_code == 201, response.text
        opportunity_id: str = response.json()["id"]
        return opportunity_id

    async def win(self, opportunity_id: str) -> None:
        response = await self.call("POST", f"/api/v1/opportunities/{opportunity_id}/win")
        assert response.status_code == 200, response.text


async def won_to_project(
    settings: Settings, pipeline: Pipeline, databases: dict[str, str], count: int, rate: float
) -> Result:
    """Wins ``count`` opportunities at ``rate`` per second; what it took."""
    venue = pipeline.admin.venue_id
    contact_id = str(uuid.uuid4())
    store = Store(settings.mongo_url, databases["pipeline"])
    try:  # the pipeline knows the contact: as if its created event had been consumed
        await ContactCopyRepository(store).upsert(venue, contact_id, "Ada", datetime.now(UTC))
    finally:
        await store.close()
    opportunities = [await pipeline.new_opportunity(contact_id, n) for n in range(count)]
    print(f"created {count} opportunities (untimed)")

    projects = Arrivals(settings.kafka_bootstrap, PROJECT_TOPIC, subject_of(ProjectCreated))
    won = Arrivals(settings.kafka_bootstrap, OPPORTUNITY_TOPIC, subject_of(OpportunityWon))
    await projects.start(partitions=settings.topic_partitions)
    await won.start(partitions=settings.topic_partitions)
    answered: dict[str, float] = {}
    try:

        async def win(n: int) -> None:
            await pipeline.win(opportunities[n])
            answered[opportunities[n]] = time.perf_counter()

        await paced(count, rate, win)
        timeout = max(120.0, count / 2)
        await won.wait_for(won.have(set(answered)), timeout, "won events")
        await projects.wait_for(
            projects.have({project_id_for(o) for o in answered}), timeout, "project events"
        )
        created = await made_at(settings, databases["projects"], venue, count, timeout)
        assert sorted(created) == sorted(project_id_for(o) for o in answered), (
            "not exactly one project per won opportunity"
        )

        def ours(project_id: str) -> list[Copy]:
            return [
                copy
                for copy in projects.copies.get(project_id, [])
                if copy.stamped is not None
                and timedelta(0) <= copy.stamped - created[project_id] <= SAME_CREATION
            ]

        await projects.wait_for(lambda: all(ours(p) for p in created), timeout, "our events")
        await asyncio.sleep(1)  # an event published twice would arrive twice by now
    finally:
        await projects.stop()
        await won.stop()
    made = {o: min(copy.arrived for copy in ours(project_id_for(o))) for o in answered}
    return Result(
        total=[(made[o] - at) * 1000 for o, at in answered.items()],
        pipeline=[(won.first(o) - at) * 1000 for o, at in answered.items()],
        projects=[(made[o] - won.first(o)) * 1000 for o in answered],
        throughput=count / (max(made.values()) - min(answered.values())),
        republished=sum(1 for p in created if len(ours(p)) > 1),
        foreign=sum(1 for p in created if len(projects.copies[p]) > len(ours(p))),
    )


async def made_at(
    settings: Settings, database: str, venue: str, count: int, timeout: float
) -> dict[str, datetime]:
    """When the projects service made each of the venue's projects (once it made
    ``count``)."""
    store = Store(settings.mongo_url, database)
    try:
        deadline = time.monotonic() + timeout
        while True:
            found = {
                d["_id"]: d["createdAt"]
                async for d in store["projects"].find({"venueId": venue}, {"createdAt": 1})
            }
            if len(found) >= count or time.monotonic() > deadline:
                return found
            await asyncio.sleep(1)
    finally:
        await store.close()


def report(result: Result, round_trips: list[float], rate: float) -> None:
    print(summary("won -> project created (readable)", result.total))
    print(summary("  of which: win answer -> won event", result.pipeline))
    print(summary("  of which: won event -> project event", result.projects))
    print(summary("baseline: produce -> consume", round_trips))
    ordered, base = sorted(result.total), sorted(round_trips)
    print(
        f"ratio won/baseline: p50 {statistics.median(ordered) / statistics.median(base):.1f}x"
        f"   p99 {p99(ordered) / p99(base):.1f}x"
    )
    quarter = max(1, len(result.projects) // 4)
    medians = [
        f"{statistics.median(result.projects[start : start + quarter]):.0f}"
        for start in range(0, quarter * 4, quarter)
    ]
    print(f"won event -> project event, p50 by quarter of the run: {' / '.join(medians)} ms")
    print(f"throughput: {result.throughput:.1f} projects/s (offered {rate:g} wins/s)")
    if result.throughput < 0.9 * rate:
        print("  the projects service fell behind: the latencies above include its backlog")
    print(f"projects announced more than once by this projects service: {result.republished}")
    if result.foreign:
        print(
            f"  (and {result.foreign} announced by another projects service: a test or run"
            " with a consumer group of its own on the shared topics; told apart by ce_time)"
        )


async def burst_to_projects(settings: Settings, count: int) -> float:
    """Projects per second of one projects replica: ``count`` won events published at
    once (a venue of their own), until all their projects are announced (their created
    events readable, so stored before). Watched on the topic: polling the store for a
    count read every project each time and took the store's time from the service."""
    venue = unique_name("venue-burst-")
    now = datetime.now(UTC)
    events = [
        OpportunityWon(
            opportunity_id=str(uuid.uuid4()), venue_id=venue, contact_id=str(uuid.uuid4()),
            name=f"Wedding {n}", stage="contract sent", event_type="WEDDING",
            event_date=now + timedelta(days=200), won_at=now,
        )
        for n in range(count)
    ]  # fmt: skip
    envelopes = [envelope_of_event(event, event.opportunity_id) for event in events]
    wanted = {project_id_for(event.opportunity_id) for event in events}
    projects = Arrivals(settings.kafka_bootstrap, PROJECT_TOPIC, subject_of(ProjectCreated))
    await projects.start(settings.topic_partitions)
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        started = time.perf_counter()
        sent = [
            await producer.send(OPPORTUNITY_TOPIC, e.data, key=e.key, headers=e.headers())
            for e in envelopes
        ]
        await asyncio.gather(*sent)
        await projects.wait_for(
            projects.have(wanted), max(120.0, count / 5), f"the burst's {count} projects"
        )
        return count / (max(projects.first(p) for p in wanted) - started)
    finally:
        await producer.stop()
        await projects.stop()


async def bare_rate(settings: Settings, count: int) -> float:
    """Messages per second through the broker alone: ``count`` produced at once and
    read by a plain consumer, on a topic of its own (deleted at the end)."""
    topic = unique_name("gala.bench.burst-")
    await ensure_topics(settings.kafka_bootstrap, [topic], partitions=1, replication_factor=1)
    arrivals = Arrivals(settings.kafka_bootstrap, topic, the_value)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await arrivals.start(partitions=1)
        started = time.perf_counter()
        sent = [await producer.send(topic, str(n).encode()) for n in range(count)]
        await asyncio.gather(*sent)
        await arrivals.wait_for(arrivals.have({str(n) for n in range(count)}), timeout=120)
        return count / (max(arrivals.first(str(n)) for n in range(count)) - started)
    finally:
        await producer.stop()
        await arrivals.stop()
        await delete_topic(settings, topic)


def figures(
    result: Result, round_trips: list[float], rate: float, saturation: float, bare: float
) -> list[Figure]:
    return [
        Figure(
            "won -> project saturation, one projects replica (a burst of won events)",
            saturation,
            "projects/s",
            baseline=bare,
            baseline_name="bare produce -> consume of the same burst (messages/s)",
            goal_value=132,
            note="the goal: 3x the 44 projects/s measured before (issue #16)",
        ),
        Figure(
            f"won -> project created, p50 at {rate:g} wins/s",
            statistics.median(result.total),
            "ms",
            baseline=statistics.median(round_trips),
            baseline_name="produce -> consume round trip, p50",
            higher_is_better=False,
        ),
        Figure(
            f"won -> project throughput, offered {rate:g} wins/s",
            result.throughput,
            "projects/s",
            note="below the offered rate: the projects service fell behind"
            if result.throughput < 0.9 * rate
            else "",
        ),
    ]


async def main(count: int, rate: float, burst: int) -> None:
    settings = Settings()
    definitions = {s.name: s for s in (pipeline_service, projects_service)}
    databases = {name: unique_name(f"gala_{name}_bench_") for name in definitions}
    logs = Path(tempfile.mkdtemp(prefix="gala-bench-"))
    processes: dict[str, ServiceProcess] = {}
    for name, definition in definitions.items():
        group = unique_name(f"gala.{name}.bench-")
        await start_groups_at_end(
            settings.kafka_bootstrap,
            group,
            definition.subscriptions.topics,
            partitions=settings.topic_partitions,
            replication_factor=settings.topic_replication_factor,
        )
        port = free_port()
        env = {
            **os.environ,
            "GALA_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "GALA_MONGO_URL": settings.mongo_url,
            "GALA_MONGO_DATABASE": databases[name],
            "GALA_CONSUMER_GROUP": group,
            "GALA_CONSUMER_START_FROM": "earliest",
            "GALA_LOG_LEVEL": "WARNING",
            f"GALA_{name.upper()}_PORT": str(port),
        }
        processes[name] = ServiceProcess(name, env, port, log_file=logs / f"{name}.log")
    try:
        async with asyncio.TaskGroup() as starting:
            for process in processes.values():
                starting.create_task(process.start())
        print(f"pipeline and projects running as processes; their output: {logs}")
        print(f"{count} samples each, {rate:g} per second\n")

        round_trips = await baseline(settings, count, rate)
        tokens = InternalTokens(settings.internal_token_secret.get_secret_value())
        admin = Principal(user_id="bench-admin", venue_id=unique_name("venue-"), role=Role.ADMIN)
        async with httpx.AsyncClient(base_url=processes["pipeline"].url, timeout=30) as http:
            result = await won_to_project(
                settings, Pipeline(http, tokens, admin), databases, count, rate
            )
        report(result, round_trips, rate)
        saturation = await burst_to_projects(settings, burst)
        bare = await bare_rate(settings, burst)
        print(f"saturation: {saturation:.1f} projects/s (bare broker: {bare:.0f} messages/s)")
        report_figures(
            "Won opportunity -> project",
            figures(result, round_trips, rate, saturation, bare),
            scale=f"{count} wins at {rate:g}/s, a burst of {burst}",
        )
    except BaseException:
        for name, process in processes.items():
            print(f"--- {name} output (last lines) ---\n{process.output()[-4000:]}")
        raise
    finally:
        await asyncio.gather(*(p.stop() for p in processes.values()), return_exceptions=True)
        store = Store(settings.mongo_url, "admin")
        try:
            for database in databases.values():
                await store.client.drop_database(database)
        finally:
            await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200, help="opportunities won (default 200)")
    parser.add_argument("--rate", type=float, default=10.0, help="wins per second (default 10)")
    parser.add_argument(
        "--burst", type=int, default=2000, help="won events published at once (default 2000)"
    )
    arguments = parser.parse_args()
    asyncio.run(main(arguments.count, arguments.rate, arguments.burst))
