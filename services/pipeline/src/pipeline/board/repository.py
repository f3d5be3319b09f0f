"""The board's queries: one aggregation for the counts and sums, one limited find per stage.

The store does the arithmetic ($match the venue's open opportunities, $group by stage
with $sum over the integer minor units: FerretDB 1.24 has only $sum/$count in $group);
Python never sees more than the first cards of each stage. (Two aggregations, one
$sum each: FerretDB 1.24 computes only the first accumulator of a $group.) The ``board``
index on opportunities (venue, outcome, stage, updatedAt) serves all of them: on MongoDB
by its planner, on the local FerretDB by the index-pushdown patch (the $match and the
card finds are equalities on indexed fields).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from pymongo import DESCENDING

from gala.aggregates import READ_FIELDS
from gala.store import Document, Store
from pipeline.board.domain import StageTotals
from pipeline.opportunities.domain import Opportunity
from pipeline.opportunities.repository import COLLECTION, from_document

CARD_SORT: Sequence[tuple[str, int]] = [("updatedAt", DESCENDING), ("_id", DESCENDING)]


def open_in(venue_id: str) -> Document:
    return {"venueId": venue_id, "outcome": "OPEN"}


class BoardRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def totals(self, venue_id: str) -> dict[str, StageTotals]:
        counts, sums = await asyncio.gather(
            self._sum_by_stage(venue_id, 1), self._sum_by_stage(venue_id, "$valueMinor")
        )
        return {
            stage_id: StageTotals(count, sums.get(stage_id, 0))
            for stage_id, count in counts.items()
        }

    async def _sum_by_stage(self, venue_id: str, what: int | str) -> dict[str, int]:
        """One $sum per aggregation: FerretDB 1.24 computes only the first accumulator of
        a $group and answers 0 for the others."""
        cursor = await self._store[COLLECTION].aggregate(_sums(venue_id, what))
        return {row["_id"]: int(row["sum"]) async for row in cursor}

    async def cards(self, venue_id: str, stage_id: str, limit: int) -> list[Opportunity]:
        if limit <= 0:
            return []  # a find's limit(0) means no limit
        cursor = (
            self._store[COLLECTION]
            .find(_cards(venue_id, stage_id), READ_FIELDS)
            .sort(list(CARD_SORT))
            .limit(limit)
        )
        return [from_document(d) async for d in cursor]

    async def plans(self, venue_id: str, stage_id: str, limit: int) -> list[Document]:
        """The store's plans for the board's queries (tests prove they use an index)."""
        db = self._store.db
        aggregate = {"aggregate": COLLECTION, "pipeline": _sums(venue_id, 1), "cursor": {}}
        find = {
            "find": COLLECTION,
            "filter": _cards(venue_id, stage_id),
            "sort": dict(CARD_SORT),
            "limit": limit,
        }
        return [await db.command("explain", command) for command in (aggregate, find)]


def _sums(venue_id: str, what: int | str) -> list[Document]:
    return [
        {"$match": open_in(venue_id)},
        {"$group": {"_id": "$stageId", "sum": {"$sum": what}}},
    ]


def _cards(venue_id: str, stage_id: str) -> Document:
    return {**open_in(venue_id), "stageId": stage_id}
