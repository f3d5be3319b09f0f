"""The board's body: money as decimal strings in the venue's currency."""

from __future__ import annotations

from decimal import Decimal

from gala.api import ResponseBody
from pipeline.board.domain import Board, Column
from pipeline.opportunities.schemas import OpportunityOut


class ColumnOut(ResponseBody):
    stage_id: str
    stage: str
    probability: Decimal
    holds_room: bool
    count: int
    total_value: Decimal
    forecast: Decimal
    cards: list[OpportunityOut]

    @classmethod
    def of(cls, c: Column) -> ColumnOut:
        return cls(
            stage_id=c.stage.id,
            stage=c.stage.name,
            probability=c.stage.probability,
            holds_room=c.stage.holds_room,
            count=c.count,
            total_value=c.total,
            forecast=c.forecast,
            cards=[OpportunityOut.of(o) for o in c.cards],
        )


class BoardOut(ResponseBody):
    currency: str
    count: int
    total_value: Decimal
    forecast: Decimal
    stages: list[ColumnOut]

    @classmethod
    def of(cls, board: Board) -> BoardOut:
        return cls(
            currency=board.currency,
            count=board.count,
            total_value=board.total,
            forecast=board.forecast,
            stages=[ColumnOut.of(c) for c in board.columns],
        )
