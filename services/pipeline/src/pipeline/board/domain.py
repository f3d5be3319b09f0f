"""The board: per stage, how many open opportunities, their total value, and the
probability-weighted forecast, all exact.

Pure: no I/O. Totals are sums of integer minor units; a forecast is the total times the
stage's probability, rounded half-even to the currency's minor unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from gala.money import from_minor, weighted
from pipeline.opportunities.domain import Opportunity
from pipeline.stages.domain import Stage


@dataclass(frozen=True)
class StageTotals:
    count: int
    total_minor: int


@dataclass(frozen=True)
class Column:
    stage: Stage
    count: int
    total: Decimal
    forecast: Decimal
    cards: list[Opportunity]


def column(stage: Stage, totals: StageTotals, currency: str, cards: list[Opportunity]) -> Column:
    return Column(
        stage=stage,
        count=totals.count,
        total=from_minor(totals.total_minor, currency),
        forecast=from_minor(weighted(totals.total_minor, stage.probability), currency),
        cards=cards,
    )


@dataclass(frozen=True)
class Board:
    currency: str
    columns: list[Column]

    @property
    def count(self) -> int:
        return sum(c.count for c in self.columns)

    @property
    def total(self) -> Decimal:
        return sum((c.total for c in self.columns), Decimal(0))

    @property
    def forecast(self) -> Decimal:
        return sum((c.forecast for c in self.columns), Decimal(0))
