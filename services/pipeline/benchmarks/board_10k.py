"""The board for a venue with 10,000 open opportunities: latency, beside a baseline.

Inserts 10,000 open opportunities (awkward amounts, spread over the default stages) for
one venue in a throwaway database on ``GALA_MONGO_URL``, then times, over repeated calls:

- the board as the service computes it (two $group aggregations with $sum over the
  integer minor units, and one limited find per stage for the first cards);
- a baseline: the same numbers from loading every open opportunity into Python.

Both must agree exactly. Run: ``.venv/bin/python services/pipeline/benchmarks/board_10k.py``.
(The declared ``board`` index serves the $match and the card finds: on MongoDB by its
planner, on the local FerretDB through the index-pushdown patch.)
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bson import Int64

from gala.money import from_minor, weighted
from gala.store import Store
from pipeline.board.repository import BoardRepository
from pipeline.board.service import BoardService
from pipeline.opportunities.repository import COLLECTION, INDEXES
from pipeline.stages.domain import DEFAULT_STAGES
from pipeline.stages.repository import SetupRepository

COUNT = 10_000
CALLS = 30
CARDS = 10


async def seed(store: Store, venue: str) -> None:
    rng = random.Random(7)
    now = datetime.now(UTC)
    documents = []
    for n in range(COUNT):
        stage = DEFAULT_STAGES[n % len(DEFAULT_STAGES)]
        documents.append(
            {
                "_id": str(uuid.uuid4()),
                "venueId": venue,
                "name": f"Event {n}",
                "contactId": f"contact-{n % 997}",
                "contactName": None,
                "stageId": stage.id,
                "stage": stage.name,
                "valueMinor": Int64(rng.randrange(1, 5_000_000)) if n % 13 else None,
                "currency": "EUR",
                "eventDate": now + timedelta(days=n % 400),
                "guestCount": 50 + n % 200,
                "requiresCatering": bool(n % 2),
                "outcome": "OPEN",
                "createdAt": now,
                "updatedAt": now + timedelta(milliseconds=n),
                "version": 1,
            }
        )
    for start in range(0, COUNT, 1000):
        await store[COLLECTION].insert_many(documents[start : start + 1000])


async def baseline(store: Store, venue: str) -> dict[str, tuple[int, Decimal, Decimal]]:
    """Everything into Python, then sums."""
    totals: dict[str, list[int]] = {}
    cards: dict[str, list[tuple[datetime, str]]] = {}
    async for d in store[COLLECTION].find({"venueId": venue, "outcome": "OPEN"}):
        entry = totals.setdefault(d["stageId"], [0, 0])
        entry[0] += 1
        entry[1] += int(d["valueMinor"] or 0)
        cards.setdefault(d["stageId"], []).append((d["updatedAt"], d["_id"]))
    for stage_cards in cards.values():
        stage_cards.sort(reverse=True)
        del stage_cards[CARDS:]
    probability = {s.id: s.probability for s in DEFAULT_STAGES}
    return {
        stage: (n, from_minor(total, "EUR"), from_minor(weighted(total, probability[stage]), "EUR"))
        for stage, (n, total) in totals.items()
    }


async def timed(call: Callable[[], Awaitable[object]]) -> list[float]:
    samples = []
    await call()  # warm-up
    for _ in range(CALLS):
        start = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def summary(name: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return f"{name:<34} p50 {p50:8.1f} ms   p99 {p99:8.1f} ms   ({len(samples)} calls)"


async def main() -> None:
    url = os.environ.get("GALA_MONGO_URL", "mongodb://127.0.0.1:27017")
    database = f"gala_pipeline_bench_{uuid.uuid4().hex[:8]}"
    store = Store(url, database)
    venue = "bench-venue"
    try:
        await store.ensure_indexes(list(INDEXES))
        start = time.perf_counter()
        await seed(store, venue)
        print(f"seeded {COUNT} open opportunities in {time.perf_counter() - start:.1f} s")
        service = BoardService(BoardRepository(store), SetupRepository(store))
        board = await service.of_venue(venue, CARDS)
        expected = await baseline(store, venue)
        got = {c.stage.id: (c.count, c.total, c.forecast) for c in board.columns if c.count}
        assert got == expected, (got, expected)
        print(f"board total {board.total} EUR, forecast {board.forecast} EUR, {board.count} open")
        print(
            summary(
                "board (aggregation + limited finds)",
                await timed(lambda: service.of_venue(venue, CARDS)),
            )
        )
        print(
            summary(
                "baseline (all documents in Python)", await timed(lambda: baseline(store, venue))
            )
        )
        plan = await store.db.command(
            "explain",
            {
                "aggregate": COLLECTION,
                "pipeline": [{"$match": {"venueId": venue, "outcome": "OPEN"}}],
                "cursor": {},
            },
        )
        print("store plan for the $match:", str(plan.get("queryPlanner", plan))[:300])
    finally:
        await store.client.drop_database(database)
        await store.close()


if __name__ == "__main__":
    asyncio.run(main())
