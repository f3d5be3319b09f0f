#!/usr/bin/env python3
"""What the pushdown patches save on a venue-scoped listing (evidence, not a test).

Loads --docs leads (default 50,000, over --venues venues) into a throwaway database with
the listing's indexes, and times a venue's pages of 50 as ``gala.store.find_page`` asks
for them (the filter, the keyset cursor's ``$or`` for a deep page, the sort with the
``_id`` tie-break, the limit) two ways, in the same run:

- pushed down: ``{"venueId": v}``, which the patched store answers through the index,
  the sort and the limit in SQLite (one page read);
- not pushed down: the same condition written ``{"$nor": [{"venueId": {"$ne": v}}]}``
  (equal for a field that never holds an array), a filter the patches leave to
  FerretDB: SQLite reads the whole collection (sorted, as the sort alone is still
  pushable) and FerretDB filters the rows itself until it has the page. Before the
  range-sort patch every listing with a sort cost more than that: the venue's rows
  were all loaded and sorted in Go.

For a first page and a deep page (after --depth pages), sorted newest first (a date) and
by heat (a number), it reports each p50 beside the unpushed p50 through
``gala.benchmarking`` (lower is better; goal: at most 0.2x), then drops its database.
On MongoDB both shapes use the index; the ratio then shows only the planner's work.

    .venv/bin/python deploy/local/ferretdb/pushdown_benchmark.py [--docs 50000] [--url URL]

Run it small (``--docs 5000 --rounds 5``) to check that it works.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, MongoClient
from pymongo.collection import Collection

from gala.benchmarking import Figure, report
from gala.store import PageRequest, encode_cursor, page_find

Document = dict[str, Any]
STATUSES = ["LEAD", "QUALIFIED", "PROPOSAL", "WON", "LOST"]
PAGE = 50
SORTS: dict[str, list[tuple[str, int]]] = {
    "newest first": [("createdAt", DESCENDING)],
    "hottest first": [("heat", DESCENDING)],
}


def documents(count: int, venues: int) -> list[Document]:
    rng = random.Random(42)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    return [
        {
            "_id": f"lead-{i:06d}",
            "venueId": f"venue-{rng.randrange(venues):03d}",
            "status": rng.choice(STATUSES),
            "createdAt": start + timedelta(seconds=rng.randrange(30_000_000)),
            "heat": rng.randrange(0, 101) if i % 3 else rng.randrange(0, 1000) / 10,
            "name": f"Guest {i}",
            "email": f"guest{i}@example.com",
            "notes": "x" * rng.randrange(50, 300),
        }
        for i in range(count)
    ]


def load(
    client: MongoClient[Document], database: str, docs: list[Document]
) -> Collection[Document]:
    leads = client[database]["leads"]
    for sort in SORTS.values():
        keys = [("venueId", ASCENDING), *sort, ("_id", sort[0][1])]
        leads.create_index(keys)
    for i in range(0, len(docs), 1000):
        leads.insert_many(docs[i : i + 1000], ordered=False)
    return leads


def cursor_after(
    docs: list[Document], venue: str, sort: list[tuple[str, int]], depth: int
) -> str | None:
    """The cursor after ``depth`` pages of the venue (computed in Python)."""
    if depth == 0:
        return None
    keys = PageRequest(sort=sort).keys()
    rows = sorted((d for d in docs if d["venueId"] == venue), key=lambda d: d["_id"])
    for key, direction in reversed(keys):
        rows.sort(key=lambda d: d[key], reverse=direction == DESCENDING)
    last = rows[depth * PAGE - 1]
    cursor: str = encode_cursor([last[key] for key, _ in keys])
    return cursor


def listing(
    leads: Collection[Document], venue: str, request: PageRequest, pushed: bool
) -> Callable[[], int]:
    condition = {"venueId": venue} if pushed else {"$nor": [{"venueId": {"$ne": venue}}]}
    filter_, keys, limit = page_find(condition, request)

    def run() -> int:
        return len(list(leads.find(filter_).sort(keys).limit(limit)))

    return run


def p50_ms(run: Callable[[], int], rounds: int) -> float:
    assert run() == PAGE + 1  # warm up; a full page and the one that says there is more
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    default_url = os.environ.get("GALA_MONGO_URL", "mongodb://127.0.0.1:27017")
    parser.add_argument("--url", default=default_url, help="the patched store")
    parser.add_argument("--docs", type=int, default=50_000)
    parser.add_argument("--venues", type=int, default=50)
    parser.add_argument("--depth", type=int, default=10, help="pages before the deep page")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()

    database = f"gala_pushdown_bench_{uuid.uuid4().hex[:8]}"
    docs = documents(args.docs, args.venues)
    venue = sorted({doc["venueId"] for doc in docs})[0]
    per_venue = sum(1 for doc in docs if doc["venueId"] == venue)
    depth = min(args.depth, per_venue // PAGE - 2)
    client: MongoClient[Document] = MongoClient(args.url, tz_aware=True)
    figures = []
    try:
        leads = load(client, database, docs)
        for name, sort in SORTS.items():
            for page, pages in (("first", 0), ("deep", depth)):
                request = PageRequest(
                    sort=sort, limit=PAGE, cursor=cursor_after(docs, venue, sort, pages)
                )
                pushed = p50_ms(listing(leads, venue, request, True), args.rounds)
                scanned = p50_ms(listing(leads, venue, request, False), args.rounds)
                figures.append(
                    Figure(
                        f"{page} page, {name}",
                        pushed,
                        "ms",
                        baseline=scanned,
                        baseline_name="the same, not pushed down ($nor)",
                        higher_is_better=False,
                        goal_ratio=0.2,
                        note=f"p50; {per_venue:,} leads in the venue"
                        + (f", after {pages} pages" if pages else ""),
                    )
                )
    finally:
        client.drop_database(database)
        client.close()
    report(
        "FerretDB pushdown: a venue's page pushed down vs not",
        figures,
        scale=f"{args.docs:,} leads over {args.venues} venues, pages of {PAGE}",
    )


if __name__ == "__main__":
    main()
