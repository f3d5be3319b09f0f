"""The board use case (ADMIN, SALES, PROJECT_MANAGER)."""

from __future__ import annotations

import asyncio

from gala.identity import Principal, ensure_role
from pipeline.board.domain import Board, StageTotals, column
from pipeline.board.repository import BoardRepository
from pipeline.roles import READERS
from pipeline.stages.repository import SetupRepository

NONE = StageTotals(0, 0)


class BoardService:
    def __init__(self, board: BoardRepository, setups: SetupRepository) -> None:
        self._board = board
        self._setups = setups

    async def board(self, principal: Principal, cards: int) -> Board:
        ensure_role(principal, READERS, "see the board")
        return await self.of_venue(principal.venue_id, cards)

    async def of_venue(self, venue_id: str, cards: int) -> Board:
        setup = await self._setups.get(venue_id)
        totals = await self._board.totals(venue_id)
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
