"""The board use cases: reading it (ADMIN, SALES, PROJECT_MANAGER) and keeping its read
model (see board/repository.py for how it stays exact)."""

from __future__ import annotations

import asyncio
import logging

from pymongo.errors import PyMongoError

from gala.identity import Principal, ensure_role
from pipeline.board.domain import Board, Contribution, StageTotals, bucket_of, column
from pipeline.board.repository import BoardModelBusy, BoardRepository
from pipeline.opportunities.domain import Opportunity
from pipeline.roles import READERS
from pipeline.stages.repository import SetupRepository

NONE = StageTotals(0, 0)
log = logging.getLogger(__name__)


class BoardService:
    def __init__(self, board: BoardRepository, setups: SetupRepository) -> None:
        self._board = board
        self._setups = setups

    async def board(self, principal: Principal, cards: int) -> Board:
        ensure_role(principal, READERS, "see the board")
        return await self.of_venue(principal.venue_id, cards)

    async def of_venue(self, venue_id: str, cards: int) -> Board:
        setup, totals = await asyncio.gather(
            self._setups.get(venue_id), self._board.totals(venue_id)
        )
        firsts = await asyncio.gather(
            *(self._board.cards(venue_id, stage.id, cards) for stage in setup.stages)
        )
        return Board(
            setup.currency,
            [
                column(stage, totals.get(stage.id, NONE), setup.currency, first)
                for stage, first in zip(setup.stages, firsts, strict=True)
            ],
        )


class BoardReadModel:
    """Keeps the board's counts and sums: one idempotent apply per opportunity change."""

    def __init__(self, board: BoardRepository) -> None:
        self._board = board

    async def written(self, opportunity: Opportunity) -> None:
        """Right after a write of ``opportunity`` (its saved version). The write is
        durable already: if this fails, the opportunity's event repairs it, so the
        request still answers with what it did."""
        try:
            await self._board.apply(
                opportunity.venue_id, opportunity.id, Contribution.of(opportunity)
            )
        except (PyMongoError, BoardModelBusy):
            log.warning(
                "board read model not updated; the opportunity's event will",
                exc_info=True,
                extra={"opportunityId": opportunity.id},
            )

    async def refresh(self, venue_id: str, opportunity_id: str) -> bool:
        """Apply the opportunity as it is stored now (its events carry no version, and
        reading the newest state makes any event's replay or late arrival harmless);
        ``True`` if the read model changed."""
        contribution = await self._board.contribution(venue_id, opportunity_id)
        if contribution is None:
            return False
        return await self._board.apply(venue_id, opportunity_id, contribution)

    async def rebuild(self, venue_id: str) -> int:
        """Recompute the venue's read model from its opportunities, safely while writes
        happen: the opportunities are read as stored (grouped by bucket in memory), then
        each bucket is rewritten by one compare-and-set on its revision that keeps, per
        opportunity, the newer of what it holds and what was read (a change that lands
        meanwhile carries a newer version, so it is never undone; a bucket that changed
        between the read and the write is re-read and merged again), with its totals
        recomputed from those entries. Returns how many opportunities were read."""
        by_bucket: dict[int, dict[str, Contribution]] = {}
        read = 0
        async for opportunity_id, contribution in self._board.contributions(venue_id):
            bucket = bucket_of(opportunity_id, self._board.buckets)
            by_bucket.setdefault(bucket, {})[opportunity_id] = contribution
            read += 1
        for bucket in range(self._board.buckets):
            await self._board.rebuild_bucket(venue_id, bucket, by_bucket.get(bucket, {}))
        return read

    async def venues(self) -> list[str]:
        return await self._board.venues()
