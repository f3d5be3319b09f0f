"""Benchmark (not a test): import 100,000 contacts from a CSV streamed through the real app.

It shows by figures that an import reads the body as it arrives and never holds the
file: the CSV is generated on the fly (never a file, never whole in memory) and sent as
a streamed request body to the contacts app, served in this process on the real store
and broker (uvicorn on a loopback port by default, or httpx's ASGI transport). It
prints rows per second and the process's peak memory (tracemalloc's peak of Python
allocations, and ru_maxrss) beside a baseline measured in the same run: the same rows
only parsed by ``csv_format``, stored nowhere; and, last, what holding the generated
file in memory would take.

    cd /work/main && make infra-up        # and export the GALA_... lines it prints
    .venv/bin/python services/contacts/benchmarks/import_100k.py [--rows 100000]

pytest does not collect it (no ``test_`` name). It uses a database of its own, dropped
at the end; the ContactCreated events it causes go to the shared topic as usual.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import time
import tracemalloc
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from contacts.bootstrap import service
from contacts.leads.csv_format import Header, RecordSplitter
from contacts.leads.domain import InvalidContact
from gala.app import ProcessRole, Runtime, create_app
from gala.identity import Principal, Role
from gala.settings import Settings
from gala.testing import http_server, identity_headers, serving

# A benchmark runs on the local system, in its explicit dev mode (made-up secrets).
os.environ.setdefault("GALA_DEV_MODE", "true")

CHUNK_BYTES = 64 * 1024
SOURCES = ("WEBSITE", "FACEBOOK", "INSTAGRAM", "LINKEDIN", "REFERRAL", "DIRECT", "OTHER")
STATUSES = ("UNQUALIFIED", "PROSPECT", "LEAD", "QUALIFIED")
BAD_EVERY = 1000  # one row in this many has a bad email: the report lists them


def lines(rows: int, tag: str) -> Iterator[str]:
    """The CSV, a line at a time: varied, quoted where needed, a few bad rows."""
    yield "name,email,phone,leadSource,status,customFields\r\n"
    for n in range(1, rows + 1):
        email = f"guest{n}@{tag}.example" if n % BAD_EVERY else f"guest{n}-at-{tag}"
        name = f'"Guest {n}, ""the {n % 7}th"""' if n % 5 == 0 else f"Guest {n}"
        phone = f"+44 20 7946 {n % 10000:04d}" if n % 3 else ""
        fields = {"table": n % 40, "note": f"line one\nline {n}", "vip": n % 11 == 0}
        custom = '"' + json.dumps(fields).replace('"', '""') + '"' if n % 2 else ""
        source, status = SOURCES[n % len(SOURCES)], STATUSES[n % len(STATUSES)]
        yield f"{name},{email},{phone},{source},{status},{custom}\r\n"


@dataclass
class Body:
    """A generated CSV as a stream of chunks; counts what it produced."""

    rows: int
    tag: str
    sent: int = 0

    async def chunks(self) -> AsyncIterator[bytes]:
        pending: list[bytes] = []
        size = 0
        for line in lines(self.rows, self.tag):
            data = line.encode()
            pending.append(data)
            size += len(data)
            if size >= CHUNK_BYTES:
                self.sent += size
                yield b"".join(pending)
                pending, size = [], 0
                await asyncio.sleep(0)
        if pending:
            self.sent += size
            yield b"".join(pending)


@dataclass
class Figures:
    """One phase: its rate, and the memory it took (tracemalloc: above its start)."""

    what: str
    rows: int = 0
    seconds: float = 0.0
    traced_growth: int | None = None  # None: measured without tracemalloc
    maxrss_before_kib: int = 0
    maxrss_kib: int = 0

    def line(self) -> str:
        traced = (
            "tracemalloc off"
            if self.traced_growth is None
            else f"tracemalloc peak +{self.traced_growth / 2**20:.2f} MiB"
        )
        return (
            f"{self.what:<46} {self.rows:>7} rows {self.seconds:>7.2f} s"
            f" {self.rows / self.seconds:>8.0f} rows/s   {traced:<28}"
            f" ru_maxrss {self.maxrss_before_kib / 1024:.1f} -> {self.maxrss_kib / 1024:.1f} MiB"
        )


class Meter:
    """Times a phase and measures the peak of traced allocations above its start."""

    def __init__(self, figures: Figures) -> None:
        self.figures = figures
        self._start_traced = 0
        self._started = 0.0

    def __enter__(self) -> Figures:
        if tracemalloc.is_tracing():
            tracemalloc.reset_peak()
            self._start_traced, _ = tracemalloc.get_traced_memory()
        self.figures.maxrss_before_kib = maxrss_kib()
        self._started = time.perf_counter()
        return self.figures

    def __exit__(self, *exc_info: object) -> None:
        self.figures.seconds = time.perf_counter() - self._started
        if tracemalloc.is_tracing():
            peak = tracemalloc.get_traced_memory()[1]
            self.figures.traced_growth = peak - self._start_traced
        self.figures.maxrss_kib = maxrss_kib()


def maxrss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


async def parse_only(rows: int, what: str) -> tuple[Figures, int]:
    """The baseline: the same stream through the splitter and the row parser, no store."""
    body = Body(rows, "baseline")
    with Meter(Figures(what)) as figures:
        splitter, header = RecordSplitter(), None
        async for chunk in body.chunks():
            for record in splitter.feed(chunk):
                if header is None:
                    header = Header.of(record)
                    continue
                figures.rows += 1
                with contextlib.suppress(InvalidContact):
                    header.row(record)
        for record in splitter.close():
            assert header is not None
            figures.rows += 1
            with contextlib.suppress(InvalidContact):
                header.row(record)
    return figures, body.sent


@dataclass
class Imported:
    figures: Figures
    report: dict[str, Any]
    pending: int  # its ContactCreated events not yet relayed when it answered


async def imports_through_the_app(
    sizes: list[int], transport: str, relay: bool, settings: Settings
) -> list[Imported]:
    """One app serving one import per size (each into a venue of its own), in turn."""
    app = create_app(service, ProcessRole.API, settings)
    runtime: Runtime = app.state.runtime
    timeout = httpx.Timeout(None)
    async with contextlib.AsyncExitStack() as stack:
        if transport == "http":
            url = await stack.enter_async_context(http_server(app))
            client = await stack.enter_async_context(
                httpx.AsyncClient(base_url=url, timeout=timeout)
            )
        else:
            client = await stack.enter_async_context(serving(app))
            client.timeout = timeout
        if not relay:
            await runtime.relay.stop()  # diagnostic: the import alone, no relay beside it
        return [await _import(client, runtime, rows) for rows in sizes]
    raise AssertionError("unreachable")


async def _import(client: httpx.AsyncClient, runtime: Runtime, rows: int) -> Imported:
    venue = f"bench-{uuid.uuid4().hex[:8]}"
    admin = Principal(user_id="benchmark", venue_id=venue, role=Role.ADMIN)
    headers = {**identity_headers(runtime, admin), "content-type": "text/csv"}
    body = Body(rows, venue)
    with Meter(Figures("import: streamed through the app and stored")) as figures:
        response = await client.post(
            "/api/v1/contacts/import", content=body.chunks(), headers=headers
        )
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    figures.rows = sum(report[k] for k in ("created", "updated", "unchanged", "rejected"))
    stored = await runtime.store["contacts"].count_documents({"venueId": venue})
    assert stored == report["created"] == rows - rows // BAD_EVERY, (stored, report)
    return Imported(figures, report, await _pending(runtime, venue))


async def _pending(runtime: Runtime, venue: str) -> int:
    """ContactCreated events not yet relayed when the import answered."""
    pending: int = await runtime.store["contacts"].count_documents(
        {"venueId": venue, "_outboxPending": True}
    )
    return pending


async def whole_file_in_memory(rows: int) -> tuple[int, Figures]:
    """For scale: what merely holding the generated file takes (the naive way)."""
    with Meter(Figures("reference: the file read whole into memory")) as figures:
        data = b"".join([chunk async for chunk in Body(rows, "inmemory").chunks()])
        figures.rows = rows
    return len(data), figures


async def main() -> None:
    parser = argparse.ArgumentParser(description="Import 100,000 streamed CSV rows.")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--transport", choices=("http", "asgi"), default="http")
    parser.add_argument(
        "--relay",
        choices=("on", "off"),
        default="on",
        help="off: stop the app's outbox relay, to see the import's own cost (diagnostic)",
    )
    args = parser.parse_args()
    settings = Settings().model_copy(
        update={"mongo_database": f"gala_contacts_bench_{uuid.uuid4().hex[:8]}"}
    )
    rss_at_start = maxrss_kib()
    untraced, size = await parse_only(args.rows, "baseline: parse only, csv_format")
    tracemalloc.start()
    traced, _ = await parse_only(args.rows, "baseline: parse only, csv_format")
    try:
        small, full = await imports_through_the_app(
            [args.rows // 10, args.rows], args.transport, args.relay == "on", settings
        )
    finally:
        store = Runtime(service, settings, ProcessRole.API).store
        await store.client.drop_database(settings.database_name(service.name))
        await store.close()
    in_memory, reference = await whole_file_in_memory(args.rows)

    mib = 2**20
    print(
        f"store {settings.mongo_url}, kafka {settings.kafka_bootstrap}, transport"
        f" {args.transport}, outbox relay {args.relay}"
    )
    print(
        f"generated CSV: {args.rows} data rows, {size / mib:.1f} MiB, streamed in"
        f" {CHUNK_BYTES // 1024} KiB chunks;"
        f" ru_maxrss before anything {rss_at_start / 1024:.1f} MiB"
    )
    for figures in (untraced, traced, small.figures, full.figures, reference):
        print(figures.line())
    for run in (small, full):
        counts = {k: run.report[k] for k in ("created", "updated", "unchanged", "rejected")}
        print(
            f"import of {run.figures.rows} rows: {counts}, rejections listed"
            f" {len(run.report['rejections'])}, ContactCreated events not yet relayed when it"
            f" answered: {run.pending}"
        )
    print(f"(the reference held the {in_memory / mib:.1f} MiB file; the imports never did)")


if __name__ == "__main__":
    asyncio.run(main())
