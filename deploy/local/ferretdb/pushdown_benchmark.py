#!/usr/bin/env python3
"""How much index-pushdown.patch saves on a venue-scoped listing (evidence, not a test).

Loads a collection of --docs leads (default 50,000, spread over --venues venues) into a
throwaway database, with the listing's index, and times the first page of a venue's
listing (sorted newest first, limit 50, as gala.store.find_page asks for it) two ways:

- pushed down: ``{"venueId": v}``, which the patched store answers through the index;
- not pushed down: the same query as ``{"venueId": {"$eq": v}}``, a shape the patch
  leaves to a full scan, i.e. what every query cost before it. With --baseline-url, the
  plain query also runs on that store (e.g. a FerretDB built without the patch), loaded
  with the same documents.

It prints the median and 95th percentile latency of each and the ratio of the medians,
then drops the databases it created. Run it with the project's virtualenv:

    .venv/bin/python deploy/local/ferretdb/pushdown_benchmark.py [--url URL] [--baseline-url URL]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, MongoClient
from pymongo.collection import Collection

Document = dict[str, Any]
SORT = [("createdAt", DESCENDING), ("_id", DESCENDING)]
STATUSES = ["LEAD", "QUALIFIED", "PROPOSAL", "WON", "LOST"]


def documents(count: int, venues: int) -> list[Document]:
    rng = random.Random(42)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    return [
        {
            "_id": f"lead-{i:06d}",
            "venueId": f"venue-{rng.randrange(venues):03d}",
            "status": rng.choice(STATUSES),
            "createdAt": start + timedelta(seconds=rng.randrange(30_000_000)),
            "name": f"Guest {i}",
            "email": f"guest{i}@example.com",
            "phone": f"+4420{rng.randrange(10**8):08d}",
            "notes": "x" * rng.randrange(50, 300),
        }
        for i in range(count)
    ]


def load(
    client: MongoClient[Document], database: str, docs: list[Document]
) -> Collection[Document]:
    leads = client[database]["leads"]
    leads.create_index(
        [("venueId", ASCENDING), ("createdAt", DESCENDING), ("_id", DESCENDING)],
        name="venue_listing",
    )
    for i in range(0, len(docs), 1000):
        leads.insert_many(docs[i : i + 1000], ordered=False)
    return leads


def timings(run: Callable[[str], int], venues: list[str], rounds: int) -> list[float]:
    for venue in venues[:3]:  # warm up
        run(venue)
    samples = []
    for i in range(rounds):
        started = time.perf_counter()
        found = run(venues[i % len(venues)])
        samples.append((time.perf_counter() - started) * 1000)
        assert found == 50, found
    return samples


def listing(leads: Collection[Document], operator: bool) -> Callable[[str], int]:
    def run(venue: str) -> int:
        query = {"venueId": {"$eq": venue}} if operator else {"venueId": venue}
        return len(list(leads.find(query).sort(SORT).limit(50)))

    return run


def report(label: str, samples: list[float]) -> float:
    median = statistics.median(samples)
    p95 = statistics.quantiles(samples, n=20)[-1]
    print(f"  {label:<44} median {median:8.1f} ms   p95 {p95:8.1f} ms")
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="mongodb://127.0.0.1:27017", help="the patched store")
    parser.add_argument("--baseline-url", help="a store without the patch (optional)")
    parser.add_argument("--docs", type=int, default=50_000)
    parser.add_argument("--venues", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()

    database = f"gala_pushdown_bench_{uuid.uuid4().hex[:8]}"
    docs = documents(args.docs, args.venues)
    venues = sorted({doc["venueId"] for doc in docs})
    clients: list[MongoClient[Document]] = []
    try:
        client: MongoClient[Document] = MongoClient(args.url, tz_aware=True)
        clients.append(client)
        leads = load(client, database, docs)
        plan = client[database].command(
            "explain", {"find": "leads", "filter": {"venueId": venues[0]}, "sort": dict(SORT)}
        )
        print(
            f"{args.docs} documents, {len(venues)} venues (~{args.docs // len(venues)} per venue);"
            " first page of a venue's listing, newest first, limit 50"
        )
        print(f"  plan of the pushed-down query: {plan.get('queryPlanner')}")
        pushed = report(
            "pushed down   {venueId: v}", timings(listing(leads, False), venues, args.rounds)
        )
        scanned = report(
            "not pushed    {venueId: {$eq: v}}", timings(listing(leads, True), venues, args.rounds)
        )
        print(f"  ratio (not pushed / pushed, medians): {scanned / pushed:.1f}x")
        if args.baseline_url:
            baseline: MongoClient[Document] = MongoClient(args.baseline_url, tz_aware=True)
            clients.append(baseline)
            base_leads = load(baseline, database, docs)
            unpatched = report(
                "unpatched store  {venueId: v}",
                timings(listing(base_leads, False), venues, args.rounds),
            )
            print(f"  ratio (unpatched / pushed, medians): {unpatched / pushed:.1f}x")
    finally:
        for each in clients:
            each.drop_database(database)
            each.close()


if __name__ == "__main__":
    main()
