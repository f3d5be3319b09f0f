"""The board read model's arithmetic: contributions, their differences, buckets."""

from datetime import UTC, datetime

from pipeline.board.domain import (
    BUCKETS,
    Contribution,
    StageTotals,
    add_up,
    bucket_of,
    deltas,
    recompute,
    supersedes,
)
from pipeline.opportunities.domain import ContactRef, Opportunity
from pipeline.stages.domain import PipelineSetup

NOW = datetime(2026, 5, 1, tzinfo=UTC)


def opportunity(**details) -> Opportunity:
    return Opportunity.create(
        venue_id="v", name="Gala", contact=ContactRef("c", "Ada"), setup=PipelineSetup("v"),
        now=NOW, **details,
    )  # fmt: skip


def test_an_open_opportunity_contributes_its_stage_and_value_a_closed_one_nothing():
    o = opportunity(value="12.34", event_date=NOW)
    assert Contribution.of(o) == Contribution(1, "new-inquiry", 1234)
    assert Contribution.of(opportunity()) == Contribution(1, "new-inquiry", 0)
    o.win(PipelineSetup("v"), NOW)
    o.version = 2
    assert Contribution.of(o) == Contribution(2, None, 0)


def test_only_a_newer_version_supersedes():
    old = Contribution(3, "qualified", 5)
    assert supersedes(Contribution(4, "qualified", 5), old)
    assert not supersedes(Contribution(3, "qualified", 5), old)
    assert not supersedes(Contribution(2, "site-visit", 9), old)
    assert supersedes(old, None)


def test_deltas_move_count_and_value_between_stages():
    first = Contribution(1, "a", 100)
    assert deltas(None, first) == {"a": StageTotals(1, 100)}
    assert deltas(first, Contribution(2, "b", 70)) == {
        "a": StageTotals(-1, -100),
        "b": StageTotals(1, 70),
    }
    assert deltas(first, Contribution(2, "a", 130)) == {"a": StageTotals(0, 30)}
    assert deltas(first, Contribution(2, "a", 100)) == {}
    assert deltas(first, Contribution(2, None, 0)) == {"a": StageTotals(-1, -100)}


def test_buckets_are_stable_and_spread():
    assert bucket_of("3f0e6c2a-0000-4000-8000-000000000001") == bucket_of(
        "3f0e6c2a-0000-4000-8000-000000000001"
    )
    assert bucket_of("abc") == 25  # the same in every process and release
    assert len({bucket_of(f"id-{n}") for n in range(2000)}) == BUCKETS


def test_sums_and_recomputation_are_exact_integers():
    parts = [{"a": StageTotals(1, 10**15)}, {"a": StageTotals(2, 1), "b": StageTotals(1, 0)}]
    assert add_up(parts) == {"a": StageTotals(3, 10**15 + 1), "b": StageTotals(1, 0)}
    contributions = [Contribution(1, "a", 5), Contribution(4, None, 0), Contribution(2, "a", 7)]
    assert recompute(contributions) == {"a": StageTotals(2, 12)}
