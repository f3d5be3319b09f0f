"""Benchmark (not a test): the HTTP path, one contact GET through the gateway vs straight.

It starts a contacts service (``--role api``) and a gateway (auth dev mode) as
``python -m`` processes on the local infrastructure, seeds a venue, a user and a contact,
and drives load at them, each figure beside its baseline from the same run:

- ``GET /api/v1/contacts/{id}`` through the gateway (a session token) vs the same GET
  straight to contacts (with the identity header the gateway would send): the ratio
  (goal ≥ 0.7x), and the p50 the gateway adds (goal ≤ 2 ms), measured on one connection
  (at 32 connections either p50 is mostly queueing: 32 / throughput);
- the contact GET vs ``/health/live`` of the same contacts process (goal ≥ 0.5x);
- the upstream clients the gateway could use, httpx vs aiohttp, each driving the same
  contact GET straight to contacts from one process (what a client costs per request).

The load comes from wrk (``make bench-tools`` installs Debian's wrk) at ``--connections``
connections; without wrk, from a Python load generator (aiohttp, one separate process).

    cd /work/main && make infra-up        # and export the GALA_... lines it prints
    .venv/bin/python gateway/benchmarks/http_path.py [--seconds 15] [--connections 32]

It uses a database of its own, dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import httpx

from gala.benchmarking import Figure, report
from gala.identity import IDENTITY_HEADER, InternalTokens, Principal, Role
from gala.store import Store
from gala.testing import ServiceProcess, free_port, unique_name
from gateway.devauth import SigningKey

SECRET = "benchmark-internal-token-secret-0123456789"
LOAD_MARKER = "--load"
FAILED: list[str] = []
"""Runs in which requests failed: reported, then the script fails."""


@dataclass(frozen=True)
class Load:
    """What one run of load measured."""

    requests_per_second: float
    p50_ms: float
    p99_ms: float
    failures: int
    tool: str


# --- load generators ------------------------------------------------------------------


def wrk(url: str, headers: dict[str, str], seconds: float, connections: int) -> Load:
    command = [
        "wrk",
        f"-t{min(2, connections)}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--latency",
        *(arg for name, value in headers.items() for arg in ("-H", f"{name}: {value}")),
        url,
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    failures = 0
    if found := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out):
        failures += int(found.group(1))
    if found := re.search(r"Socket errors:.*?(\d+).*?(\d+).*?(\d+).*?(\d+)", out):
        failures += sum(int(n) for n in found.groups())
    return Load(rate, _wrk_ms(out, "50%"), _wrk_ms(out, "99%"), failures, "wrk")


def _wrk_ms(out: str, percentile: str) -> float:
    found = re.search(rf"^\s*{percentile}\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
    assert found, f"wrk printed no {percentile} latency:\n{out}"
    value, unit = float(found.group(1)), found.group(2)
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def python_load(
    client: str, url: str, headers: dict[str, str], seconds: float, connections: int
) -> Load:
    """Load from a separate process (this script with ``--load``): its figures."""
    command = [
        sys.executable,
        __file__,
        LOAD_MARKER,
        client,
        url,
        json.dumps(headers),
        str(seconds),
        str(connections),
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    found = json.loads(out.strip().splitlines()[-1])
    return Load(**found)


async def _drive(
    client: str, url: str, headers: dict[str, str], seconds: float, connections: int
) -> Load:
    """``connections`` loops each sending the GET again as soon as it is answered."""
    latencies: list[float] = []
    failures = 0
    deadline = 0.0

    async def one_aiohttp(session: aiohttp.ClientSession) -> None:
        nonlocal failures
        while (started := time.perf_counter()) < deadline:
            async with session.get(url, headers=headers) as response:
                await response.read()
                failures += response.status >= 400
            latencies.append(time.perf_counter() - started)

    async def one_httpx(session: httpx.AsyncClient) -> None:
        nonlocal failures
        while (started := time.perf_counter()) < deadline:
            response = await session.get(url, headers=headers)
            failures += response.status_code >= 400
            latencies.append(time.perf_counter() - started)

    if client == "aiohttp":
        connector = aiohttp.TCPConnector(limit=connections)
        async with aiohttp.ClientSession(connector=connector) as session:
            async with session.get(url, headers=headers) as warm:
                await warm.read()
            deadline = time.perf_counter() + seconds
            began = time.perf_counter()
            await asyncio.gather(*(one_aiohttp(session) for _ in range(connections)))
    else:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        async with httpx.AsyncClient(limits=limits) as pool:
            await pool.get(url, headers=headers)
            deadline = time.perf_counter() + seconds
            began = time.perf_counter()
            await asyncio.gather(*(one_httpx(pool) for _ in range(connections)))
    elapsed = time.perf_counter() - began
    latencies.sort()
    return Load(
        len(latencies) / elapsed,
        latencies[len(latencies) // 2] * 1000,
        latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        failures,
        client,
    )


def load(url: str, headers: dict[str, str], seconds: float, connections: int) -> Load:
    if shutil.which("wrk"):
        return wrk(url, headers, seconds, connections)
    return python_load("aiohttp", url, headers, seconds, connections)


# --- the system -----------------------------------------------------------------------


@dataclass(frozen=True)
class Seeded:
    gateway: str
    contacts: str
    session: str
    identity: str
    contact_id: str


@contextlib.asynccontextmanager
async def system(logs: Path, seconds: float) -> AsyncIterator[Seeded]:
    contacts_port, gateway_port = free_port(), free_port()
    database = unique_name("gala_bench_http_")
    env = {
        **os.environ,
        "GALA_DEV_MODE": "true",
        "GALA_AUTH_DEV_MODE": "true",
        "GALA_AUTH_DEV_KEY_DIR": str(logs / "dev-auth"),
        "GALA_HOST": "127.0.0.1",
        "GALA_INTERNAL_TOKEN_SECRET": SECRET,
        "GALA_INTERNAL_TOKEN_TTL_SECONDS": str(int(seconds * 20 + 600)),
        "GALA_LOG_LEVEL": "WARNING",
        "GALA_MONGO_DATABASE": database,
        "GALA_CONTACTS_PORT": str(contacts_port),
        "GALA_GATEWAY_PORT": str(gateway_port),
        "GALA_CONTACTS_URL": f"http://127.0.0.1:{contacts_port}",
        # one user sends every request: the per-user rate limit must not be what is measured
        "GALA_RATE_LIMIT_PER_MINUTE": "100000000",
        "GALA_RATE_LIMIT_BURST": "100000000",
    }
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        env.pop(name, None)
    contacts = ServiceProcess(
        "contacts", env, contacts_port, ("--role", "api"), log_file=logs / "contacts.log"
    )
    gateway = ServiceProcess("gateway", env, gateway_port, log_file=logs / "gateway.log")
    try:
        await contacts.start()
        await gateway.start()
        yield await seed(contacts.url, gateway.url, logs / "dev-auth", gateway_port)
    finally:
        await asyncio.gather(gateway.stop(), contacts.stop(), return_exceptions=True)
        store = Store(env.get("GALA_MONGO_URL", "mongodb://127.0.0.1:27017"), "admin")
        try:
            await store.client.drop_database(database)
        finally:
            await store.close()


async def seed(contacts: str, gateway: str, key_dir: Path, gateway_port: int) -> Seeded:
    """A venue's ADMIN (through the internal users API, as ``gala users add``), their
    session token, and one contact created through the gateway."""
    tokens = InternalTokens(SECRET, ttl_seconds=3600)
    venue, subject = unique_name("venue-"), unique_name("user_")
    async with httpx.AsyncClient(timeout=30) as http:
        created = await http.post(
            f"{contacts}/internal/v1/users",
            headers={IDENTITY_HEADER: tokens.issue_for_service("cli")},
            json={
                "venueId": venue,
                "email": f"{subject}@example.com",
                "authSubject": subject,
                "role": "ADMIN",
            },
        )
        assert created.status_code == 201, created.text
        user_id = created.json()["id"]
        key = SigningKey.load_or_create(key_dir)
        session = key.mint(subject, issuer=f"http://127.0.0.1:{gateway_port}/dev", ttl_seconds=3600)
        contact = await http.post(
            f"{gateway}/api/v1/contacts",
            headers={"Authorization": f"Bearer {session}"},
            json={"name": "Ada Lovelace", "email": f"ada-{subject}@example.com"},
        )
        assert contact.status_code == 201, contact.text
    identity = tokens.issue(Principal(user_id=user_id, venue_id=venue, role=Role.ADMIN))
    return Seeded(gateway, contacts, session, identity, contact.json()["id"])


# --- the figures ----------------------------------------------------------------------


async def measure(seconds: float, connections: int) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="gala-bench-http-") as logs:
        async with system(Path(logs), seconds) as seeded:
            path = f"/api/v1/contacts/{seeded.contact_id}"
            session = {"Authorization": f"Bearer {seeded.session}"}
            identity = {IDENTITY_HEADER: seeded.identity}
            runs = {
                "gateway": (f"{seeded.gateway}{path}", session),
                "direct": (f"{seeded.contacts}{path}", identity),
                "health": (f"{seeded.contacts}/health/live", {}),
            }
            # warm-up: caches filled, connections made, code paths imported
            for url, headers in runs.values():
                await asyncio.to_thread(load, url, headers, 1, connections)
            got = {
                name: await asyncio.to_thread(load, url, headers, seconds, connections)
                for name, (url, headers) in runs.items()
            }
            # what the gateway adds to one request, without queueing behind 31 others
            alone = {
                name: await asyncio.to_thread(load, *runs[name], seconds, 1)
                for name in ("gateway", "direct")
            }
            clients = {
                client: await asyncio.to_thread(
                    python_load, client, *runs["direct"], seconds, connections
                )
                for client in ("httpx", "aiohttp")
            }
    for name, measured in [
        *got.items(),
        *((f"{name}, 1 connection", found) for name, found in alone.items()),
        *clients.items(),
    ]:
        print(
            f"  {name}: {measured.requests_per_second:,.0f} req/s, p50 {measured.p50_ms:.2f} ms,"
            f" p99 {measured.p99_ms:.2f} ms ({measured.tool})",
            file=sys.stderr,
        )
        if measured.failures:
            FAILED.append(f"{name}: {measured.failures} requests failed")
    gateway, direct, health = got["gateway"], got["direct"], got["health"]
    tool = f"{gateway.tool}, {connections} connections"
    return [
        Figure(
            "GET one contact through the gateway",
            round(gateway.requests_per_second),
            "req/s",
            baseline=round(direct.requests_per_second),
            baseline_name="straight to contacts",
            goal_ratio=0.7,
            note=tool,
        ),
        Figure(
            "p50 the gateway adds to a contact GET",
            round(alone["gateway"].p50_ms - alone["direct"].p50_ms, 2),
            "ms",
            higher_is_better=False,
            goal_value=2,
            note=f"one connection: p50 {alone['gateway'].p50_ms:.2f} vs"
            f" {alone['direct'].p50_ms:.2f} ms straight; at {connections} connections"
            f" {gateway.p50_ms:.1f} vs {direct.p50_ms:.1f} ms",
        ),
        Figure(
            "p99 of a contact GET through the gateway",
            round(gateway.p99_ms, 1),
            "ms",
            baseline=round(direct.p99_ms, 1),
            baseline_name="straight to contacts",
            higher_is_better=False,
        ),
        Figure(
            "GET one contact, straight to contacts",
            round(direct.requests_per_second),
            "req/s",
            baseline=round(health.requests_per_second),
            baseline_name="/health/live of the same process",
            goal_ratio=0.5,
            note=tool,
        ),
        Figure(
            "aiohttp as the client of a contact GET",
            round(clients["aiohttp"].requests_per_second),
            "req/s",
            baseline=round(clients["httpx"].requests_per_second),
            baseline_name="httpx",
            note=f"one Python process, {connections} connections,"
            f" p50 {clients['aiohttp'].p50_ms:.1f} vs {clients['httpx'].p50_ms:.1f} ms",
        ),
    ]


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == LOAD_MARKER:
        client, url, headers, seconds, connections = sys.argv[2:7]
        found = asyncio.run(
            _drive(client, url, json.loads(headers), float(seconds), int(connections))
        )
        print(json.dumps(found.__dict__))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else "")
    parser.add_argument("--seconds", type=float, default=15.0, help="of load per figure")
    parser.add_argument("--connections", type=int, default=32)
    arguments = parser.parse_args()
    figures = asyncio.run(measure(arguments.seconds, arguments.connections))
    report(
        "The HTTP path: a contact GET through the gateway",
        figures,
        scale=f"{arguments.seconds:g} s of load per figure, {arguments.connections} connections",
    )
    if FAILED:
        raise SystemExit("failed requests: " + "; ".join(FAILED))


if __name__ == "__main__":
    main()
