"""HTTP entry point for the board."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from gala.api import problems
from gala.app import StoreDep
from gala.errors import Forbidden
from gala.identity import CurrentPrincipal
from pipeline.board.repository import BoardRepository
from pipeline.board.schemas import BoardOut
from pipeline.board.service import BoardService
from pipeline.stages.repository import SetupRepository


async def get_board_service(store: StoreDep) -> BoardService:
    return BoardService(BoardRepository(store), SetupRepository(store))


Boards = Annotated[BoardService, Depends(get_board_service)]
router = APIRouter(prefix="/api/v1/pipeline", tags=["pipeline"])


@router.get("/board", responses=problems(Forbidden))
async def get_board(
    principal: CurrentPrincipal,
    boards: Boards,
    cards: Annotated[int, Query(ge=0, le=50, description="Cards per stage")] = 10,
) -> BoardOut:
    """Per stage: open opportunities' count, total value, weighted forecast, first cards."""
    return BoardOut.of(await boards.board(principal, cards))
