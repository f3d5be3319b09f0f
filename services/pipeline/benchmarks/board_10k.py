"""The board of a venue with 10,000 open opportunities: latency, beside baselines.

Inserts ``--count`` (10,000) open opportunities (awkward amounts, spread over the default
stages) for one venue, and ``--small`` (100) for another, in a throwaway database on
``GALA_MONGO_URL``; builds their read model with the rebuild (``python -m pipeline
rebuild-board`` runs the same code); then times, over ``--calls`` repeated calls:

- the board as the service computes it (:class:`BoardService`: one read of the venue's
  totals document of the read model, one limited find per stage for the first cards);
- baseline 1: the board as it was computed before the read model (two $group
  aggregations with $sum over the integer minor units, and the same limited finds);
- baseline 2: the same numbers from loading every open opportunity into Python;
- the board of the small venue (the same code: its time should not depend on the size),
  and the read model's totals alone for both venues (the rest is the first cards' finds,
  which rely on the store pushing the ``board`` index's sort and limit down).

All must agree exactly. Goal (issue #16): p50 at most 50 ms, whatever the venue's size.
Run: ``.venv/bin/python services/pipeline/benchmarks/board_10k.py [--count N]``.
"""

from __future__ import annotations

import argparse
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

from gala.benchmarking import Figure, report
from gala.money import from_minor, weighted
from gala.store import Document, Store
from pipeline.board.domain import Board, StageTotals, column
from pipeline.board.repository import INDEXES as BOARD_INDEXES
from pipeline.board.repository import BoardRepository
from pipeline.board.service import NONE, BoardReadModel, BoardService
from pipeline.opportunities.repository import COLLECTION, INDEXES
from pipeline.stages.domain import DEFAULT_STAGES
from pipeline.stages.repository import SetupRepository

Numbers = dict[str, tuple[int, Decimal, Decimal]]


async def seed(store: Store, venue: str, count: int) -> None:
    rng = random.Random(7)
    now = datetime.now(UTC)
    documents = []
    for n in range(count):
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
    for start in range(0, count, 1000):
        await store[COLLECTION].insert_many(documents[start : start + 1000])


async def in_python(store: Store, venue: str, cards: int) -> Numbers:
    """Baseline 2: everything into Python, then sums (and the first cards)."""
    totals: dict[str, list[int]] = {}
    firsts: dict[str, list[tuple[datetime, str]]] = {}
    async for d in store[COLLECTION].find({"venueId": venue, "outcome": "OPEN"}):
        entry = totals.setdefault(d["stageId"], [0, 0])
        entry[0] += 1
        entry[1] += int(d["valueMinor"] or 0)
        firsts.setdefault(d["stageId"], []).append((d["updatedAt"], d["_id"]))
    for stage_cards in firsts.values():
        stage_cards.sort(reverse=True)
        del stage_cards[cards:]
    probability = {s.id: s.probability for s in DEFAULT_STAGES}
    return {
        stage: (n, from_minor(total, "EUR"), from_minor(weighted(total, probability[stage]), "EUR"))
        for stage, (n, total) in totals.items()
    }


def _sums(venue_id: str, what: int | str) -> list[Document]:
    return [
        {"$match": {"venueId": venue_id, "outcome": "OPEN"}},
        {"$group": {"_id": "$stageId", "sum": {"$sum": what}}},
    ]


async def _sum_by_stage(store: Store, venue_id: str, what: int | str) -> dict[str, int]:
    """One $sum per aggregation: FerretDB 1.24 computes only the first accumulator."""
    cursor = await store[COLLECTION].aggregate(_sums(venue_id, what))
    return {row["_id"]: int(row["sum"]) async for row in cursor}


async def aggregated(store: Store, venue: str, cards: int) -> Board:
    """Baseline 1: the board as it was before the read model (aggregations per read)."""
    setup = await SetupRepository(store).get(venue)
    counts, sums = await asyncio.gather(
        _sum_by_stage(store, venue, 1), _sum_by_stage(store, venue, "$valueMinor")
    )
    totals = {stage: StageTotals(n, sums.get(stage, 0)) for stage, n in counts.items()}
    repository = BoardRepository(store)
    firsts = await asyncio.gather(
        *(repository.cards(venue, stage.id, cards) for stage in setup.stages)
    )
    return Board(
        setup.currency,
        [
            column(stage, totals.get(stage.id, NONE), setup.currency, first)
            for stage, first in zip(setup.stages, firsts, strict=True)
        ],
    )


def numbers(board: Board) -> Numbers:
    return {c.stage.id: (c.count, c.total, c.forecast) for c in board.columns if c.count}


async def timed(calls: int, call: Callable[[], Awaitable[object]]) -> list[float]:
    samples = []
    await call()  # warm-up
    for _ in range(calls):
        start = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def p50(samples: list[float]) -> float:
    return statistics.median(samples)


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


async def main(count: int, small: int, calls: int, cards: int) -> None:
    url = os.environ.get("GALA_MONGO_URL", "mongodb://127.0.0.1:27017")
    database = f"gala_pipeline_bench_{uuid.uuid4().hex[:8]}"
    store = Store(url, database)
    venue, little = "bench-venue", "bench-small-venue"
    try:
        await store.ensure_indexes([*INDEXES, *BOARD_INDEXES])
        start = time.perf_counter()
        await seed(store, venue, count)
        await seed(store, little, small)
        print(f"seeded {count} + {small} open opportunities in {time.perf_counter() - start:.1f} s")
        model = BoardReadModel(BoardRepository(store))
        start = time.perf_counter()
        assert await model.rebuild(venue) == count
        rebuild_seconds = time.perf_counter() - start
        assert await model.rebuild(little) == small
        print(f"rebuilt the read model of {count} opportunities in {rebuild_seconds:.1f} s")

        service = BoardService(BoardRepository(store), SetupRepository(store))
        board = await service.of_venue(venue, cards)
        expected = await in_python(store, venue, cards)
        assert numbers(board) == expected, (numbers(board), expected)
        assert numbers(await aggregated(store, venue, cards)) == expected
        print(f"board total {board.total} EUR, forecast {board.forecast} EUR, {board.count} open")

        model_ms = await timed(calls, lambda: service.of_venue(venue, cards))
        aggregation_ms = await timed(calls, lambda: aggregated(store, venue, cards))
        python_ms = await timed(calls, lambda: in_python(store, venue, cards))
        small_ms = await timed(calls, lambda: service.of_venue(little, cards))
        repository = BoardRepository(store)
        totals_ms = await timed(calls, lambda: repository.totals(venue))
        small_totals_ms = await timed(calls, lambda: repository.totals(little))
    finally:
        await store.client.drop_database(database)
        await store.close()

    goal = 50.0
    report(
        "pipeline board",
        [
            Figure(
                "board p50 (read model)",
                p50(model_ms),
                "ms",
                baseline=p50(aggregation_ms),
                baseline_name="aggregations per read (before)",
                higher_is_better=False,
                goal_value=goal,
            ),
            Figure(
                "board p50 (read model) vs all in Python",
                p50(model_ms),
                "ms",
                baseline=p50(python_ms),
                baseline_name="every open opportunity loaded into Python",
                higher_is_better=False,
                goal_value=goal,
            ),
            Figure(
                "board p99 (read model)",
                p99(model_ms),
                "ms",
                baseline=p99(aggregation_ms),
                baseline_name="aggregations per read (before)",
                higher_is_better=False,
            ),
            Figure(
                f"board p50 at {count} vs {small} open",
                p50(model_ms),
                "ms",
                baseline=p50(small_ms),
                baseline_name=f"the same board of a venue with {small}",
                higher_is_better=False,
                goal_value=goal,
                note="the read does not grow with the venue",
            ),
            Figure(
                f"read model totals p50 at {count} vs {small} open",
                p50(totals_ms),
                "ms",
                baseline=p50(small_totals_ms),
                baseline_name=f"the totals of a venue with {small}",
                higher_is_better=False,
                note="the counts and sums alone (the rest of the board: the first cards)",
            ),
            Figure(
                "read model rebuild",
                rebuild_seconds,
                "s",
                higher_is_better=False,
                note=f"python -m pipeline rebuild-board of {count} opportunities",
            ),
        ],
        scale=f"{count} open opportunities, {calls} calls, {cards} cards per stage",
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=10_000, help="open opportunities")
    parser.add_argument("--small", type=int, default=100, help="the small venue's")
    parser.add_argument("--calls", type=int, default=30, help="timed calls of each")
    parser.add_argument("--cards", type=int, default=10, help="cards per stage")
    return parser.parse_args()


if __name__ == "__main__":
    args = parse_args()
    asyncio.run(main(args.count, args.small, args.calls, args.cards))
