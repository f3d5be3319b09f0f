"""The board: per stage, how many open opportunities, their total value, and the
probability-weighted forecast, all exact.

Pure: no I/O. Totals are sums of integer minor units; a forecast is the total times the
stage's probability, rounded half-even to the currency's minor unit. The totals come
from a read model (board/repository.py) made of each opportunity's *contribution*: one
to its stage's count and its value (none: 0) to its stage's sum while it is open,
nothing once won or lost. Every opportunity of a venue is in its venue's currency (the
currency cannot change while opportunities have a value), so the sums are in it too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

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


# --- the read model's arithmetic (see board/repository.py for how it is stored) -------

BUCKETS: Final = 64
"""Buckets per venue: an opportunity's contribution lives in the bucket its id hashes to."""


@dataclass(frozen=True)
class Contribution:
    """What one opportunity, as of ``version``, adds to the board: to ``stage_id``'s count
    one and its value (0 when it has none) while it is open; nothing once won or lost
    (``stage_id`` None)."""

    version: int
    stage_id: str | None
    value_minor: int

    @classmethod
    def of(cls, opportunity: Opportunity) -> Contribution:
        if not opportunity.is_open:
            return cls(opportunity.version, None, 0)
        return cls(opportunity.version, opportunity.stage_id, opportunity.value_minor or 0)


def bucket_of(opportunity_id: str, buckets: int = BUCKETS) -> int:
    """A stable hash of the id (the same in every process and release), mod ``buckets``."""
    digest = hashlib.blake2b(opportunity_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % buckets


def supersedes(new: Contribution, old: Contribution | None) -> bool:
    """Whether ``new`` replaces what a bucket holds: only a newer version does, so a
    replay or an older version changes nothing."""
    return old is None or new.version > old.version


def deltas(old: Contribution | None, new: Contribution) -> dict[str, StageTotals]:
    """What replacing ``old`` by ``new`` changes in each stage's totals (non-zero only)."""
    changes: dict[str, list[int]] = {}
    if old is not None and old.stage_id is not None:
        entry = changes.setdefault(old.stage_id, [0, 0])
        entry[0] -= 1
        entry[1] -= old.value_minor
    if new.stage_id is not None:
        entry = changes.setdefault(new.stage_id, [0, 0])
        entry[0] += 1
        entry[1] += new.value_minor
    return {
        stage: StageTotals(count, total)
        for stage, (count, total) in changes.items()
        if count or total
    }


def add_up(parts: Iterable[Mapping[str, StageTotals]]) -> dict[str, StageTotals]:
    """The sum, per stage, of several buckets' totals."""
    sums: dict[str, list[int]] = {}
    for part in parts:
        for stage, totals in part.items():
            entry = sums.setdefault(stage, [0, 0])
            entry[0] += totals.count
            entry[1] += totals.total_minor
    return {stage: StageTotals(count, total) for stage, (count, total) in sums.items()}


def recompute(contributions: Iterable[Contribution]) -> dict[str, StageTotals]:
    """The totals of a set of contributions, from scratch (a bucket's, the rebuild's)."""
    return add_up({c.stage_id: StageTotals(1, c.value_minor)} for c in contributions if c.stage_id)
