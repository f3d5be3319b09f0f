"""The pipeline's pure rules: money, stages, rooms, opportunities."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from gala.contracts.pipeline import OpportunityOutcome
from gala.money import InvalidMoney, from_minor, to_minor, weighted
from pipeline.opportunities.domain import (
    ContactRef,
    InvalidOpportunity,
    Opportunity,
    OpportunityClosed,
    OpportunityPatch,
    RoomRef,
)
from pipeline.rooms.domain import PENDING_GRACE, ClaimState, InvalidRoom, Room, claim_state
from pipeline.stages.domain import InvalidStages, PipelineSetup, StageDraft

NOW = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [("1250.00", "EUR", 125000), ("1250.5", "EUR", 125050), ("0.1", "USD", 10),
     ("1250", "JPY", 1250), ("1.234", "KWD", 1234), ("0", "EUR", 0)],
)  # fmt: skip
def test_amounts_become_minor_units_exactly(amount, currency, minor):
    assert to_minor(amount, currency) == minor
    assert from_minor(minor, currency) == Decimal(amount)


@pytest.mark.parametrize(
    ("amount", "currency"),
    [("1.001", "EUR"), ("1.5", "JPY"), ("-1", "EUR"), ("abc", "EUR"), ("NaN", "EUR"),
     ("1e30", "EUR")],
)  # fmt: skip
def test_impossible_amounts_are_refused_never_rounded(amount, currency):
    with pytest.raises(InvalidMoney):
        to_minor(amount, currency)


def test_amounts_print_with_the_currency_decimals():
    assert str(from_minor(125000, "EUR")) == "1250.00"
    assert str(from_minor(0, "EUR")) == "0.00"
    assert str(from_minor(1250, "JPY")) == "1250"
    assert str(from_minor(1, "BHD")) == "0.001"


def test_sums_of_minor_units_are_exact_and_forecasts_round_half_even():
    cents = [to_minor(a, "EUR") for a in ("0.10", "0.20", "0.10")]
    assert from_minor(sum(cents), "EUR") == Decimal("0.40")
    assert weighted(45, Decimal("0.1")) == 4  # 4.5 -> 4 (half-even)
    assert weighted(55, Decimal("0.1")) == 6  # 5.5 -> 6
    assert weighted(10000123456829, Decimal("0.4")) == 4000049382732


def test_default_stages_and_lookup():
    setup = PipelineSetup("v")
    assert [s.name for s in setup.stages] == [
        "new inquiry", "qualified", "site visit", "proposal sent", "contract sent",
    ]  # fmt: skip
    assert [s.holds_room for s in setup.stages] == [False, False, False, True, True]
    assert setup.stage("Site  Visit").id == "site-visit"
    assert setup.stage("contract-sent").name == "contract sent"
    assert setup.stage("nope") is None


def test_a_plan_tells_renames_and_removals_from_reorders():
    setup = PipelineSetup("v")
    drafts = [StageDraft(s.name, s.probability, s.holds_room, s.id) for s in setup.stages]
    assert setup.plan(list(reversed(drafts))).affected == {}
    renamed = [*drafts[:1], StageDraft("qualified lead", Decimal("0.3"), False, "qualified")]
    plan = setup.plan([*renamed, *drafts[2:]])
    assert plan.affected == {"qualified": "qualified"}
    assert setup.plan(drafts[:-1]).affected == {"contract-sent": "contract sent"}
    repurposed = [*drafts[:2], StageDraft("site visit", Decimal("0.4"), True, "site-visit")]
    assert setup.plan([*repurposed, *drafts[3:]]).affected == {"site-visit": "site visit"}
    for bad in ([], [StageDraft("a", Decimal("1.1"))], [StageDraft("a", Decimal(0), id="x")],
                [StageDraft("a", Decimal(0)), StageDraft(" A ", Decimal(0))]):  # fmt: skip
        with pytest.raises(InvalidStages):
            setup.plan(bad)


def make(**fields):
    return Opportunity.create(
        venue_id="v", name="Gala", contact=ContactRef("c", "Ada"), setup=PipelineSetup("v"),
        now=NOW, **fields,
    )  # fmt: skip


def test_a_room_is_held_in_late_stages_or_won_never_lost():
    hall = RoomRef("r1", "Hall", 100)
    setup = PipelineSetup("v")
    o = make(room=hall, event_date=datetime(2031, 5, 1, 23, 30, tzinfo=UTC), guest_count=50)
    assert o.room_claim is None  # new inquiry holds nothing
    o.update(OpportunityPatch(stage="proposal sent"), setup, NOW)
    assert o.room_claim == "r1|2031-05-01"
    o.update(OpportunityPatch(stage="qualified"), setup, NOW)
    assert o.room_claim is None
    assert o.win(setup, NOW) is True
    assert o.room_claim == "r1|2031-05-01"
    assert o.win(setup, NOW) is False  # idempotent
    assert [type(e).__name__ for e in o.collect_events()] == [
        "OpportunityCreated", "OpportunityStageChanged", "OpportunityStageChanged",
        "OpportunityWon",
    ]  # fmt: skip
    with pytest.raises(OpportunityClosed):
        o.lose("too late", setup, NOW)
    with pytest.raises(OpportunityClosed):
        o.update(OpportunityPatch(stage="site visit"), setup, NOW)
    lost = make(room=hall, event_date=NOW, stage="contract sent")
    assert lost.room_claim == "r1|2030-01-01"
    lost.lose("gone", setup, NOW)
    assert lost.room_claim is None and lost.outcome == OpportunityOutcome.LOST
    with pytest.raises(OpportunityClosed):
        lost.win(setup, NOW)


def test_capacity_and_winning_need_their_facts():
    with pytest.raises(InvalidOpportunity):
        make(room=RoomRef("r", "Snug", 10), guest_count=11)
    with pytest.raises(InvalidOpportunity):
        make().win(PipelineSetup("v"), NOW)
    with pytest.raises(InvalidRoom):
        Room.create(venue_id="v", name="x", capacity=0, now=NOW)


def test_an_unchanged_patch_records_nothing():
    o = make(value="10.00")
    o.collect_events()
    o.update(OpportunityPatch(value="10.0", name=" Gala "), PipelineSetup("v"), NOW)
    assert o.collect_events() == []


def test_hints_only_move_forward():
    setup = PipelineSetup("v")
    o = make(stage="proposal sent")
    contract = setup.by_id("contract-sent")
    assert o.advance(contract, setup, NOW, only_from="proposal-sent") is True
    assert o.advance(contract, setup, NOW, only_from="proposal-sent") is False
    back = setup.by_id("qualified")
    assert o.advance(back, setup, NOW, only_from=None) is False


def test_claim_states():
    key = "r|2030-01-01"
    fresh, old = NOW, NOW - PENDING_GRACE - timedelta(seconds=1)

    def state(version, claim, at=fresh, expected=3):
        return claim_state(key, expected_version=expected, claimed_at=at,
                           holder_version=version, holder_claim=claim, now=NOW)  # fmt: skip

    assert state(3, key) == ClaimState.HELD
    assert state(2, key) == ClaimState.HELD  # held before this refresh
    assert state(2, None) == ClaimState.PENDING
    assert state(None, None) == ClaimState.PENDING  # being created
    assert state(2, None, old) == ClaimState.ABANDONED
    assert state(None, None, old) == ClaimState.ABANDONED
    assert state(3, None) == ClaimState.STALE
    assert state(5, "r|2030-01-02") == ClaimState.STALE
