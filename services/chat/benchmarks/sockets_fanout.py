"""Benchmark (not a test): the chat's fan-out to 1,000 + 200 WebSockets, beside a bare relay.

Runs the chat service as processes (``python -m chat``, as ``make dev`` runs it) on
``GALA_KAFKA_BOOTSTRAP`` and ``GALA_MONGO_URL``, first ONE replica, then TWO (one shared
database and consumer group, a fresh one per run, starting at the end of the topics it
reads). Each run makes 21 projects known (their ``ProjectCreated`` events, as the
projects service publishes them), then opens, in batches, 1,000 sockets on one project
("big") and 10 on each of the 20 others ("small"), split evenly over the replicas. The
members are CLIENT users listed in the project's ``clientIds`` (the first few sockets of
each project) and ADMINs of the venue (the rest), each socket a user of its own. One
client of each project sends on its socket (always on the first replica):

- ``--messages`` (default 200) into the big project at ``--rate`` per second (default 20);
- ``--small-messages`` (default 5) into each small project, spread over the same time.

A message's content carries its project and number; one task per socket timestamps
each frame as it arrives. For each message it measures, from just before it is sent:

- delivery latency: to its receipt on each socket of its project (a sample per message
  and socket), p50/p99/max;
- to its receipt on every socket of its project (the slowest one), p50/p99/max;
- throughput: socket deliveries per second, from the first send to the last receipt.

It also counts what went missing (and how many messages no socket received at all: lost
before the fan-out), duplicates, frames out of order, sockets the server closed (code and
reason) and ``error`` frames, and the CPU used over the measured window: by the servers,
this client, the local store and Kafka when ``make infra-up`` started them (their pid
files), and the whole machine. A run ends once every delivery arrived or after
``--drain-timeout`` seconds without any.

As a baseline, measured first in the same run on the same machine with the same 1,200
sockets and the same sending pattern: a bare ``websockets`` server (this script with
``--serve-baseline PORT``, a process of its own) that numbers each received message per
project and relays it, as a frame shaped like the chat's, to every socket of the project
(``websockets.broadcast``). It prints the ratios Gala / baseline for p50, p99 and
throughput.

The replicas run with ``GALA_SEND_RATE_PER_MINUTE`` raised (``--send-rate-per-minute``):
at the default 60 a user may not send 20 messages a second. Permessage-deflate is
negotiated as a browser does (``--no-deflate`` to turn it off on both sides).

    cd /work/main && make infra-up        # and export the GALA_... lines it prints
    .venv/bin/python services/chat/benchmarks/sockets_fanout.py [--messages 200] [--rate 20]

pytest does not collect it (no ``test_`` name). Every socket is closed and the processes
stopped at the end, and the databases dropped; the replicas' output goes to a temporary
folder, printed if a run fails. This machine runs the client, the servers and the
infrastructure on the same cores: compare with the baseline, not in absolute terms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import resource
import signal
import sys
import tempfile
import time
import uuid
from array import array
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

from chat.bootstrap import service as chat_service
from gala.benchmarking import Figure, report
from gala.contracts.projects import ProjectCreated, ProjectStatus
from gala.identity import IDENTITY_HEADER, InternalTokens, Principal, Role
from gala.settings import Settings
from gala.store import Store
from gala.testing import (
    ServiceProcess,
    free_port,
    publish_events,
    start_groups_at_end,
    unique_name,
)

# A benchmark runs on the local system, in its explicit dev mode (made-up secrets).
os.environ.setdefault("GALA_DEV_MODE", "true")

BIG_SOCKETS = 1000
SMALL_PROJECTS = 20
SMALL_SOCKETS = 10
BIG_CLIENTS = 10
"""CLIENT users in the big project's clientIds (its first sockets); the rest are ADMINs."""
SMALL_CLIENTS = 3
WARMUP = "warmup"
TICKS = os.sysconf("SC_CLK_TCK")
INFRA_STATE = Path(__file__).resolve().parents[3] / "deploy" / "local" / ".state"
Compression = Literal["deflate"] | None


# --- the plan: who connects where, what is sent when -----------------------------------


@dataclass(frozen=True)
class Plan:
    messages: int
    rate: float
    small_messages: int
    """Per small project."""
    batch: int
    drain_timeout: float
    compression: Compression

    @property
    def duration(self) -> float:
        return self.messages / self.rate

    def per_project(self, project: int) -> int:
        return self.messages if project == 0 else self.small_messages

    def schedule(self) -> list[tuple[float, int, int]]:
        """(seconds after the start, project, number) of every message, in time order:
        the big project's at a steady pace, the small ones' spread over the same time."""
        sends = [(k / self.rate, 0, k) for k in range(self.messages)]
        total = SMALL_PROJECTS * self.small_messages
        for j in range(total):
            sends.append(
                ((j + 0.5) * self.duration / total, 1 + j % SMALL_PROJECTS, j // SMALL_PROJECTS)
            )
        return sorted(sends)

    @property
    def offered(self) -> float:
        """Socket deliveries per second the sending pattern asks for."""
        small = SMALL_PROJECTS * self.small_messages * SMALL_SOCKETS / self.duration
        return self.rate * BIG_SOCKETS + small


@dataclass(frozen=True)
class Member:
    project: int
    """0: the big project; 1..20: the small ones."""
    principal: Principal


def members(venue: str) -> list[Member]:
    """Every socket's user, big project first; each project's first member sends."""
    found = []
    sizes = [(BIG_SOCKETS, BIG_CLIENTS)] + [(SMALL_SOCKETS, SMALL_CLIENTS)] * SMALL_PROJECTS
    for project, (sockets, clients) in enumerate(sizes):
        for n in range(sockets):
            role = Role.CLIENT if n < clients else Role.ADMIN
            user_id = f"{role.value.lower()}-{project}-{n}"
            found.append(Member(project, Principal(user_id=user_id, venue_id=venue, role=role)))
    return found


Address = Callable[[int, Member], tuple[str, dict[str, str]]]
"""The socket URL and headers for socket ``n`` (of all) of ``member``."""


# --- the sockets ---------------------------------------------------------------------


@dataclass
class Tally:
    delivered: int = 0
    errors: Counter[str] = field(default_factory=Counter)


@dataclass
class Receiver:
    """One socket, and when each message of its project arrived on it."""

    member: Member
    socket: ClientConnection
    tally: Tally
    arrived: array[float]
    warm: bool = False
    last_seq: int = 0
    duplicates: int = 0
    disorder: int = 0
    close_code: int | None = None
    close_reason: str = ""
    closed: bool = False
    by_server: bool = False
    """Closed before this client closed it."""
    closing: bool = False
    task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._receive())

    async def _receive(self) -> None:
        tag = f"p{self.member.project}"
        try:
            async for raw in self.socket:
                now = time.perf_counter()
                frame = json.loads(raw)
                if frame.get("type") != "message":
                    if frame.get("type") == "error":
                        self.tally.errors[str(frame.get("detail"))[:80]] += 1
                    continue
                message = frame["message"]
                seq = int(message["seq"])
                if seq <= self.last_seq:
                    self.disorder += 1
                self.last_seq = max(self.last_seq, seq)
                kind, _, number = str(message.get("content", "")).partition(":")
                if kind == WARMUP:
                    self.warm = True
                elif kind == tag:
                    k = int(number)
                    if math.isnan(self.arrived[k]):
                        self.arrived[k] = now
                        self.tally.delivered += 1
                    else:
                        self.duplicates += 1
        except ConnectionClosed:
            pass
        finally:
            self.closed = True
            self.by_server = not self.closing
            self.close_code = self.socket.close_code
            self.close_reason = self.socket.close_reason or ""

    async def close(self) -> None:
        self.closing = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.socket.close(), 10)
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


async def open_all(
    plan: Plan, everyone: Sequence[Member], address: Address, tally: Tally
) -> list[Receiver]:
    """Every member's socket, ``plan.batch`` at a time, each receiving from the start."""
    receivers: list[Receiver] = []

    async def one(n: int, member: Member) -> Receiver:
        url, headers = address(n, member)
        socket = await connect(
            url,
            additional_headers=headers,
            compression=plan.compression,
            open_timeout=60,
            ping_interval=None,  # the servers ping; a busy client must not drop sockets
            max_queue=256,
        )
        arrived = array("d", [math.nan]) * plan.per_project(member.project)
        receiver = Receiver(member, socket, tally, arrived)
        receiver.start()
        return receiver

    try:
        for start in range(0, len(everyone), plan.batch):
            batch = everyone[start : start + plan.batch]
            opened = await asyncio.gather(
                *(one(n, m) for n, m in enumerate(batch, start)), return_exceptions=True
            )
            receivers += [r for r in opened if isinstance(r, Receiver)]
            failed = [r for r in opened if isinstance(r, BaseException)]
            if failed:
                raise failed[0]
    except BaseException:
        await close_all(receivers, plan.batch)
        raise
    return receivers


async def close_all(receivers: Sequence[Receiver], batch: int) -> None:
    for start in range(0, len(receivers), batch):
        await asyncio.gather(*(r.close() for r in receivers[start : start + batch]))


def senders(receivers: Sequence[Receiver]) -> dict[int, Receiver]:
    """Each project's first socket."""
    found: dict[int, Receiver] = {}
    for receiver in receivers:
        found.setdefault(receiver.member.project, receiver)
    return found


async def send(receiver: Receiver, content: str) -> None:
    await receiver.socket.send(json.dumps({"type": "message", "content": content}))


async def warm_up(receivers: Sequence[Receiver], timeout: float = 60) -> float:
    """Send warm-up messages (every second) until every socket has received one: every
    server reads the bus and serves every socket. Seconds it took."""
    start = time.perf_counter()
    first = senders(receivers)
    n = 0
    while not all(r.warm for r in receivers):
        gone = [r for r in receivers if r.closed]
        if gone:
            codes = Counter(r.close_code for r in gone)
            raise RuntimeError(f"{len(gone)} sockets closed before the run: {dict(codes)}")
        if time.perf_counter() - start > timeout:
            cold = sum(not r.warm for r in receivers)
            raise TimeoutError(f"{cold} sockets received no warm-up message in {timeout}s")
        for sender in first.values():
            await send(sender, f"{WARMUP}:{n}")
        n += 1
        for _ in range(20):  # a second, or less once every socket has one
            if all(r.warm for r in receivers):
                break
            await asyncio.sleep(0.05)
    await asyncio.sleep(1)  # the last warm-ups' stragglers, before the clock starts
    return time.perf_counter() - start


# --- measuring --------------------------------------------------------------------------


@dataclass(frozen=True)
class Spread:
    samples: int
    p50: float
    p99: float
    max: float

    @classmethod
    def of(cls, values: list[float]) -> Spread:
        if not values:
            return cls(0, math.nan, math.nan, math.nan)
        ordered = sorted(values)
        return cls(len(ordered), quantile(ordered, 0.5), quantile(ordered, 0.99), ordered[-1])

    def line(self, name: str, expected: int) -> str:
        return (
            f"    {name:<32} p50 {self.p50:8.1f} ms   p99 {self.p99:8.1f} ms"
            f"   max {self.max:8.1f} ms   ({self.samples} of {expected})"
        )


def quantile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass(frozen=True)
class Cpu:
    """CPU seconds so far: of each named process, this process, the whole machine."""

    processes: dict[str, float]
    client: float
    busy: float
    total: float
    total_wall: float

    @classmethod
    def now(cls, pids: dict[str, int]) -> Cpu:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return cls(
            {name: process_cpu(pid) for name, pid in pids.items()},
            usage.ru_utime + usage.ru_stime,
            (sum(fields) - idle) / TICKS,
            sum(fields) / TICKS,
            time.perf_counter(),
        )

    def since(self, before: Cpu) -> dict[str, float]:
        spent = {name: at - before.processes.get(name, 0.0) for name, at in self.processes.items()}
        return {**spent, "this client": self.client - before.client}


def process_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan  # gone
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def infra_pids() -> dict[str, int]:
    """The local Kafka and store processes, when ``make infra-up`` started them (their
    pid files in deploy/local/.state); none otherwise."""
    found = {}
    for name in ("store", "kafka"):
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            pid = int(json.loads((INFRA_STATE / name / "pid.json").read_text())["pid"])
            if Path(f"/proc/{pid}/stat").exists():
                found[name] = pid
    return found


@dataclass(frozen=True)
class Figures:
    name: str
    plan: Plan
    connected: float
    warm: float
    big: Spread
    big_all: Spread
    small: Spread
    small_all: Spread
    deliveries: int
    expected: int
    window: float
    missing: int
    unseen: int
    """Messages sent that no socket received (lost before the fan-out)."""
    duplicates: int
    disorder: int
    closed: Counter[str]
    errors: Counter[str]
    cpu: dict[str, float]
    """CPU seconds by process, from the first send to the last delivery seen."""
    cpu_window: float
    lost_senders: list[str]
    """Senders' sockets the server closed: what they sent afterwards was not read."""
    busy: float
    """Of the machine's CPU over the window (0..1, all cores)."""

    @property
    def throughput(self) -> float:
        return self.deliveries / self.window if self.window > 0 else math.nan

    def report(self) -> None:
        plan = self.plan
        small_expected = SMALL_PROJECTS * plan.small_messages
        print(f"\n== {self.name}")
        print(
            f"  sockets: {BIG_SOCKETS + SMALL_PROJECTS * SMALL_SOCKETS} connected in"
            f" {self.connected:.1f} s (batches of {plan.batch}); warm-up {self.warm:.1f} s"
        )
        print(
            f"  big project, {BIG_SOCKETS} sockets, {plan.messages} messages at"
            f" {plan.rate:g}/s from one sender:"
        )
        print(self.big.line("delivery (message x socket)", plan.messages * BIG_SOCKETS))
        print(self.big_all.line("until every socket has it", plan.messages))
        print(
            f"  small projects, {SMALL_PROJECTS} x {SMALL_SOCKETS} sockets,"
            f" {small_expected} messages:"
        )
        print(self.small.line("delivery (message x socket)", small_expected * SMALL_SOCKETS))
        print(self.small_all.line("until every socket has it", small_expected))
        print(
            f"  throughput: {self.throughput:,.0f} socket deliveries/s over {self.window:.1f} s"
            f" (offered {plan.offered:,.0f}/s); {self.deliveries:,} of {self.expected:,}"
        )
        closed = ", ".join(f"{n} x {why}" for why, n in self.closed.items()) or "none"
        print(
            f"  missing {self.missing:,} (messages no socket received: {self.unseen}),"
            f" duplicates {self.duplicates}, out of order {self.disorder}"
        )
        print(f"  sockets closed by the server: {closed}")
        if self.lost_senders:
            print(f"    of which senders: {', '.join(self.lost_senders)}")
        for detail, n in self.errors.most_common(3):
            print(f"  error frames: {n} x {detail!r}")
        spent = ", ".join(f"{name} {seconds:.1f}" for name, seconds in self.cpu.items())
        print(f"  CPU seconds, first send to last delivery ({self.cpu_window:.1f} s): {spent}")
        print(f"    machine {self.busy:.0%} busy ({os.cpu_count()} cores, everything included)")


async def measure(
    name: str, plan: Plan, everyone: Sequence[Member], address: Address, pids: dict[str, int]
) -> Figures:
    """Connect everyone, warm up, send the plan's messages, wait for them; the figures."""
    pids = {**pids, **infra_pids()}
    tally = Tally()
    start = time.perf_counter()
    receivers = await open_all(plan, everyone, address, tally)
    try:
        connected = time.perf_counter() - start
        warm = await warm_up(receivers)
        for receiver in receivers:
            receiver.last_seq = 0  # ordering is checked from here on (warm-ups may repeat)
            receiver.duplicates = receiver.disorder = 0
        tally.errors.clear()
        first = senders(receivers)
        sent = [array("d", [math.nan]) * plan.per_project(p) for p in range(1 + SMALL_PROJECTS)]
        before = Cpu.now(pids)
        begin = time.perf_counter()
        for offset, project, k in plan.schedule():
            delay = begin + offset - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent[project][k] = time.perf_counter()
            await send(first[project], f"p{project}:{k}")
        expected = sum(plan.per_project(r.member.project) for r in receivers)
        after = Cpu.now(pids)  # the CPU window ends with the last delivery seen
        last_change, seen = time.perf_counter(), tally.delivered
        while tally.delivered < expected:
            await asyncio.sleep(0.1)
            if tally.delivered != seen:
                last_change, seen = time.perf_counter(), tally.delivered
                after = Cpu.now(pids)
            elif time.perf_counter() - last_change > plan.drain_timeout:
                break
    finally:
        await close_all(receivers, plan.batch)
    return figures(name, plan, receivers, sent, tally, connected, warm, before, after)


def figures(
    name: str,
    plan: Plan,
    receivers: Sequence[Receiver],
    sent: list[array[float]],
    tally: Tally,
    connected: float,
    warm: float,
    before: Cpu,
    after: Cpu,
) -> Figures:
    by_project: dict[int, list[Receiver]] = defaultdict(list)
    for receiver in receivers:
        by_project[receiver.member.project].append(receiver)
    deliveries: dict[bool, list[float]] = {True: [], False: []}
    everyone: dict[bool, list[float]] = {True: [], False: []}
    last = -math.inf
    unseen = 0
    for project, group in by_project.items():
        big = project == 0
        for k, at in enumerate(sent[project]):
            times = [r.arrived[k] for r in group if not math.isnan(r.arrived[k])]
            deliveries[big] += [(t - at) * 1000 for t in times]
            if len(times) == len(group):
                everyone[big].append((max(times) - at) * 1000)
            if times:
                last = max(last, *times)
            else:
                unseen += 1
    begin = min(min(s) for s in sent if len(s))
    expected = sum(len(sent[r.member.project]) for r in receivers)
    return Figures(
        name=name,
        plan=plan,
        connected=connected,
        warm=warm,
        big=Spread.of(deliveries[True]),
        big_all=Spread.of(everyone[True]),
        small=Spread.of(deliveries[False]),
        small_all=Spread.of(everyone[False]),
        deliveries=tally.delivered,
        expected=expected,
        window=last - begin,
        missing=expected - tally.delivered,
        unseen=unseen,
        duplicates=sum(r.duplicates for r in receivers),
        disorder=sum(r.disorder for r in receivers),
        closed=Counter(f"{r.close_code} {r.close_reason!r}" for r in receivers if r.by_server),
        errors=Counter(tally.errors),
        cpu=after.since(before),
        cpu_window=after.total_wall - before.total_wall,
        lost_senders=[
            f"project {p} ({r.close_code} {r.close_reason!r})"
            for p, r in senders(receivers).items()
            if r.by_server
        ],
        busy=(after.busy - before.busy) / max(after.total - before.total, 1e-9),
    )


# --- the baseline: a bare relay ---------------------------------------------------------


async def serve_baseline(port: int) -> None:
    """A minimal relay: each message received on ``/projects/{id}`` is numbered and sent
    to every socket of that project (the sender's too), as the chat shapes it."""
    rooms: dict[str, set[ServerConnection]] = defaultdict(set)
    seqs: Counter[str] = Counter()

    async def handler(socket: ServerConnection) -> None:
        assert socket.request is not None
        project = socket.request.path.rsplit("/", 1)[-1]
        room = rooms[project]
        room.add(socket)
        try:
            async for raw in socket:
                frame = json.loads(raw)
                if frame.get("type") != "message":
                    continue
                seqs[project] += 1
                message = {
                    "id": str(uuid.uuid4()),
                    "projectId": project,
                    "seq": seqs[project],
                    "senderId": "sender",
                    "senderRole": "CLIENT",
                    "messageType": "text",
                    "content": str(frame.get("content", "")),
                    "metadata": None,
                    "createdAt": datetime.now(UTC).isoformat(),
                }
                broadcast(room, json.dumps({"type": "message", "message": message}))
        finally:
            room.discard(socket)

    loop = asyncio.get_running_loop()
    stop: asyncio.Future[None] = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
    async with serve(handler, "127.0.0.1", port, max_queue=256):
        await stop


@contextlib.asynccontextmanager
async def baseline_server(port: int) -> AsyncIterator[int]:
    """This script as ``--serve-baseline PORT``, a process of its own; yields its pid."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--serve-baseline", str(port)
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if child.returncode is not None:
                raise RuntimeError(f"the baseline server exited with {child.returncode}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)
                continue
            writer.close()
            await writer.wait_closed()
            break
        yield child.pid
    finally:
        if child.returncode is None:
            child.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(child.wait(), 20)
        except TimeoutError:
            child.kill()
            await child.wait()


async def run_baseline(plan: Plan) -> Figures:
    port = free_port()
    everyone = members("venue-baseline")
    project_ids = [f"project-{p}" for p in range(1 + SMALL_PROJECTS)]

    def address(_: int, member: Member) -> tuple[str, dict[str, str]]:
        return f"ws://127.0.0.1:{port}/projects/{project_ids[member.project]}", {}

    async with baseline_server(port) as pid:
        return await measure(
            "baseline: bare websockets relay (1 process)", plan, everyone, address, {"relay": pid}
        )


# --- Gala ---------------------------------------------------------------------------------


async def create_projects(
    settings: Settings, database: str, venue: str, everyone: Sequence[Member]
) -> list[str]:
    """The projects, made known to chat as the projects service announces them."""
    project_ids = [unique_name("project-bench-") for _ in range(1 + SMALL_PROJECTS)]
    clients: dict[int, list[str]] = defaultdict(list)
    for member in everyone:
        if member.principal.role is Role.CLIENT:
            clients[member.project].append(member.principal.user_id)
    moment = datetime(2027, 6, 12, tzinfo=UTC)
    created = [
        (
            ProjectCreated(
                project_id=project_id,
                venue_id=venue,
                opportunity_id=str(uuid.uuid4()),
                name=f"Bench wedding {n}",
                status=ProjectStatus.ACTIVE,
                start_date=moment,
                end_date=moment + timedelta(hours=12),
                client_ids=clients[n],
            ),
            project_id,
        )
        for n, project_id in enumerate(project_ids)
    ]
    await publish_events(settings.kafka_bootstrap, created)
    store = Store(settings.mongo_url, database)
    try:  # known: the conversation and its first (system) message are stored
        deadline = time.monotonic() + 60
        wanted = {"projectId": {"$in": project_ids}}
        while await store["messages"].count_documents(wanted) < len(project_ids):
            if time.monotonic() > deadline:
                raise TimeoutError("chat did not make the projects' conversations within 60s")
            await asyncio.sleep(0.2)
    finally:
        await store.close()
    return project_ids


async def run_gala(
    settings: Settings, plan: Plan, replicas: int, logs: Path, send_rate: int
) -> Figures:
    database = unique_name("gala_chat_bench_")
    group = unique_name("gala.chat.bench-")
    await start_groups_at_end(
        settings.kafka_bootstrap,
        group,
        chat_service.subscriptions.topics,
        partitions=settings.topic_partitions,
        replication_factor=settings.topic_replication_factor,
    )
    processes = []
    for n in range(replicas):
        port = free_port()
        env = {
            **os.environ,
            "GALA_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "GALA_MONGO_URL": settings.mongo_url,
            "GALA_MONGO_DATABASE": database,
            "GALA_CONSUMER_GROUP": group,
            "GALA_CONSUMER_START_FROM": "earliest",
            "GALA_LOG_LEVEL": "WARNING",
            "GALA_SEND_RATE_PER_MINUTE": str(send_rate),
            "GALA_CHAT_PORT": str(port),
        }
        log_file = logs / f"chat-{replicas}x-{n}.log"
        processes.append(ServiceProcess("chat", env, port, log_file=log_file))
    try:
        for process in processes:  # one after another: the first makes the indexes
            await process.start()
        venue = unique_name("venue-bench-")
        everyone = members(venue)
        project_ids = await create_projects(settings, database, venue, everyone)
        tokens = InternalTokens(settings.internal_token_secret.get_secret_value())

        def address(n: int, member: Member) -> tuple[str, dict[str, str]]:
            port = processes[n % replicas].port  # each project's first socket: replica 1
            url = f"ws://127.0.0.1:{port}/api/v1/projects/{project_ids[member.project]}/chat"
            return url, {IDENTITY_HEADER: tokens.issue(member.principal)}

        pids = {
            f"replica {n}": p.child.pid for n, p in enumerate(processes, 1) if p.child is not None
        }
        plural = "replica" if replicas == 1 else "replicas"
        return await measure(
            f"Gala chat, {replicas} {plural} (python -m chat)", plan, everyone, address, pids
        )
    except BaseException:
        for process in processes:
            print(f"--- {process.log_file} (last lines) ---\n{process.output()[-4000:]}")
        raise
    finally:
        await asyncio.gather(*(p.stop() for p in processes), return_exceptions=True)
        store = Store(settings.mongo_url, database)
        try:
            await store.client.drop_database(database)
        finally:
            await store.close()


# --- the whole run ------------------------------------------------------------------------


def raise_open_files(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        wanted = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))  # children inherit it


def ratios(baseline: Figures, runs: Sequence[Figures]) -> None:
    print("\n== Gala / baseline (delivery latency per message and socket; throughput)")
    print(f"  {'':<40}{'p50':>10}{'p99':>10}{'throughput':>12}")
    for run in runs:
        print(
            f"  {run.name:<40}{run.big.p50 / baseline.big.p50:>9.1f}x"
            f"{run.big.p99 / baseline.big.p99:>9.1f}x"
            f"{run.throughput / baseline.throughput:>11.2f}x"
        )
    print(
        f"  (baseline: p50 {baseline.big.p50:.1f} ms, p99 {baseline.big.p99:.1f} ms,"
        f" {baseline.throughput:,.0f} deliveries/s; big project)"
    )
    figures = []
    for run in runs:
        figures += [
            Figure(
                f"{run.name}: delivery p50",
                run.big.p50,
                "ms",
                baseline=baseline.big.p50,
                baseline_name="bare WebSocket relay",
                higher_is_better=False,
            ),
            Figure(
                f"{run.name}: delivery p99",
                run.big.p99,
                "ms",
                baseline=baseline.big.p99,
                baseline_name="bare WebSocket relay",
                higher_is_better=False,
            ),
            Figure(
                f"{run.name}: deliveries/s",
                run.throughput,
                "/s",
                baseline=baseline.throughput,
                baseline_name="bare WebSocket relay",
            ),
        ]
    report(
        "Chat: delivery to 1,000 + 200 sockets",
        figures,
        scale=f"{BIG_SOCKETS} sockets on one project, {SMALL_PROJECTS} x {SMALL_SOCKETS}",
    )


async def main(plan: Plan, replicas: Sequence[int], send_rate: int) -> None:
    sockets = BIG_SOCKETS + SMALL_PROJECTS * SMALL_SOCKETS
    raise_open_files(2 * sockets + 1024)
    settings = Settings()
    logs = Path(tempfile.mkdtemp(prefix="gala-chat-bench-"))
    print(
        f"{sockets} sockets ({BIG_SOCKETS} on one project, {SMALL_PROJECTS} x {SMALL_SOCKETS}),"
        f" {plan.messages} messages at {plan.rate:g}/s + {SMALL_PROJECTS * plan.small_messages}"
        f" into the small projects; deflate {'on' if plan.compression else 'off'};"
        f" replicas' output: {logs}"
    )
    baseline = await run_baseline(plan)
    baseline.report()
    runs = []
    for count in replicas:
        run = await run_gala(settings, plan, count, logs, send_rate)
        run.report()
        runs.append(run)
    ratios(baseline, runs)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200, help="into the big project (200)")
    parser.add_argument("--rate", type=float, default=20.0, help="per second (default 20)")
    parser.add_argument("--small-messages", type=int, default=5, help="per small project (5)")
    parser.add_argument("--batch", type=int, default=100, help="sockets opened at once (100)")
    parser.add_argument(
        "--drain-timeout", type=float, default=30.0, help="give up after so long without news"
    )
    parser.add_argument(
        "--replicas", type=int, nargs="*", default=[1, 2], help="(1 2; none: baseline only)"
    )
    parser.add_argument(
        "--send-rate-per-minute", type=int, default=1_000_000, help="the replicas' send limit"
    )
    parser.add_argument("--no-deflate", action="store_true", help="no permessage-deflate")
    parser.add_argument("--serve-baseline", type=int, metavar="PORT", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.serve_baseline:
        asyncio.run(serve_baseline(arguments.serve_baseline))
    else:
        asyncio.run(
            main(
                Plan(
                    messages=arguments.messages,
                    rate=arguments.rate,
                    small_messages=arguments.small_messages,
                    batch=arguments.batch,
                    drain_timeout=arguments.drain_timeout,
                    compression=None if arguments.no_deflate else "deflate",
                ),
                arguments.replicas,
                arguments.send_rate_per_minute,
            )
        )
