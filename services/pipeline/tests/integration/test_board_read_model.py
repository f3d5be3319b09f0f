"""The board's read model on the real store and broker: after concurrent changes, replays
and out-of-order applies it equals a full recomputation from the opportunities; the
pipeline's own events repair a write whose read-model update was lost; the rebuild
equals the recomputation too, also while writes happen."""

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from gala.testing import eventually
from pipeline.board.domain import BUCKETS, Contribution, StageTotals, bucket_of
from pipeline.board.rebuild import rebuild
from pipeline.board.repository import BUCKETS_COLLECTION, TOTALS_COLLECTION, BoardRepository
from pipeline.board.service import BoardReadModel
from pipeline.opportunities.domain import ContactRef, Opportunity, OpportunityPatch
from pipeline.opportunities.repository import COLLECTION, OpportunityRepository
from pipeline.stages.domain import DEFAULT_STAGES, PipelineSetup

pytestmark = pytest.mark.asyncio(loop_scope="session")

OPPS = "/api/v1/opportunities"
STAGES = [s.name for s in DEFAULT_STAGES]


async def recomputed(store, venue: str) -> dict[str, StageTotals]:
    """The board's numbers from every opportunity of the venue, from scratch."""
    sums: dict[str, list[int]] = {}
    async for d in store[COLLECTION].find({"venueId": venue, "outcome": "OPEN"}):
        entry = sums.setdefault(d["stageId"], [0, 0])
        entry[0] += 1
        entry[1] += int(d.get("valueMinor") or 0)
    return {stage: StageTotals(n, m) for stage, (n, m) in sums.items()}


async def read_model(store, venue: str) -> dict[str, StageTotals]:
    totals = await BoardRepository(store).totals(venue)
    return {s: t for s, t in totals.items() if t != StageTotals(0, 0)}


async def open_some(service, admin, contact: str, count: int) -> list[str]:
    ids = []
    for n in range(count):
        body = {
            "name": f"Event {n}",
            "contactId": contact,
            "value": f"{n * 37 + 1}.{n % 100:02d}",
            "stage": STAGES[n % 3],
            "eventDate": (datetime.now(UTC) + timedelta(days=30 + n)).isoformat(),
        }
        response = await service.call("POST", OPPS, admin, body)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


async def churn(service, admin, ids: list[str], seed: int, steps: int) -> None:
    """Random moves, value edits, wins and losses (some refused: 409 is fine)."""
    rng = random.Random(seed)
    for _ in range(steps):
        target = f"{OPPS}/{rng.choice(ids)}"
        kind = rng.random()
        if kind < 0.4:
            response = await service.call("PATCH", target, admin, {"stage": rng.choice(STAGES)})
        elif kind < 0.8:
            value = f"{rng.randrange(0, 10**7)}.{rng.randrange(100):02d}"
            response = await service.call("PATCH", target, admin, {"value": value})
        elif kind < 0.9:
            response = await service.call("POST", f"{target}/win", admin)
        else:
            response = await service.call("POST", f"{target}/lose", admin, {"reason": "budget"})
        assert response.status_code in (200, 409), response.text


async def test_concurrent_changes_through_two_replicas_equal_a_recomputation(pipeline, replica):
    venue, admin = pipeline.new_venue()
    contact = await pipeline.known_contact(venue)
    ids = await open_some(pipeline, admin, contact, 16)
    await asyncio.gather(
        *(
            churn(service, admin, ids, seed, 15)
            for seed, service in enumerate([pipeline, replica] * 3)
        )
    )
    store = pipeline.runtime.store
    expected = await recomputed(store, venue)
    assert expected, "something is still open"
    assert await read_model(store, venue) == expected
    board = (await pipeline.call("GET", "/api/v1/pipeline/board", admin)).json()
    columns = {c["stageId"]: c for c in board["stages"]}
    for stage, totals in expected.items():
        assert columns[stage]["count"] == totals.count


async def test_replays_and_out_of_order_applies_change_nothing(pipeline):
    """Applies of many opportunities' versions, shuffled and each repeated, from several
    tasks at once: the model holds each opportunity's newest version, no more."""
    venue, _ = pipeline.new_venue()
    board = BoardRepository(pipeline.runtime.store, buckets=4)  # crowded buckets: races
    rng = random.Random(3)
    histories: dict[str, list[Contribution]] = {}
    for n in range(40):
        versions = []
        for version in range(1, rng.randrange(2, 7)):
            closed = version > 2 and rng.random() < 0.3
            stage = None if closed else rng.choice(DEFAULT_STAGES).id
            versions.append(Contribution(version, stage, 0 if closed else rng.randrange(10**9)))
            if closed:
                break
        histories[f"opp-{n}-{uuid.uuid4()}"] = versions
    applies = [(i, c) for i, versions in histories.items() for c in versions for _ in range(2)]
    rng.shuffle(applies)

    async def worker(part: list[tuple[str, Contribution]]) -> None:
        for opportunity_id, contribution in part:
            await board.apply(venue, opportunity_id, contribution)

    await asyncio.gather(*(worker(applies[k::6]) for k in range(6)))
    sums: dict[str, list[int]] = {}
    for versions in histories.values():
        newest = versions[-1]
        if newest.stage_id is not None:
            entry = sums.setdefault(newest.stage_id, [0, 0])
            entry[0] += 1
            entry[1] += newest.value_minor
    expected = {stage: StageTotals(n, m) for stage, (n, m) in sums.items()}
    got = {s: t for s, t in (await board.totals(venue)).items() if t != StageTotals(0, 0)}
    assert got == expected
    # an old version, again, after everything: nothing moves
    some_id, versions = next(iter(histories.items()))
    assert await board.apply(venue, some_id, versions[0]) is False
    got = {s: t for s, t in (await board.totals(venue)).items() if t != StageTotals(0, 0)}
    assert got == expected


def setup_of(venue: str) -> PipelineSetup:
    return PipelineSetup(venue_id=venue)


async def processed(store, event_id: str) -> bool:
    return (
        await store["processed_events"].find_one({"eventId": event_id, "handler": "board.apply"})
        is not None
    )


async def test_the_opportunity_events_repair_a_lost_update_and_replays_change_nothing(
    pipeline_worker,
):
    """A write whose read-model update never happened (the process died between the two)
    is repaired by its own event; events replayed afterwards (redelivered, or older ones
    arriving late) leave the model as it is."""
    worker = pipeline_worker
    store = worker.runtime.store
    venue, admin = worker.new_venue()
    contact = await worker.known_contact(venue)
    opportunities = OpportunityRepository(store, worker.runtime.outbox)
    setup = setup_of(venue)
    now = datetime.now(UTC)
    written = []
    for n in range(3):
        opportunity = Opportunity.create(
            venue_id=venue, name=f"Gala {n}", contact=ContactRef(contact, "Ada"), setup=setup,
            now=now, value=f"{n + 1}00.00",
        )  # fmt: skip
        created_event = opportunity.pending_events[0]
        await opportunities.insert(opportunity)  # no read-model update: as if it crashed
        written.append((opportunity, created_event))

    async def repaired() -> bool:
        return await read_model(store, venue) == await recomputed(store, venue)

    assert await recomputed(store, venue) == {"new-inquiry": StageTotals(3, 60000)}
    await eventually(repaired, timeout=30)

    # moved and valued again, again without the read model (the events bring it)
    moved, _ = written[0]
    moved.update(OpportunityPatch(stage="qualified", value="7.77"), setup, datetime.now(UTC))
    assert await opportunities.save(moved)
    await eventually(repaired, timeout=30)
    assert await read_model(store, venue) == {
        "new-inquiry": StageTotals(2, 50000),
        "qualified": StageTotals(1, 777),
    }
    # the old created events again (new ids: not de-duplicated, the handler runs)
    ids = [await worker.publish(event, o.id) for o, event in written]
    for event_id in ids:
        await eventually(lambda event_id=event_id: processed(store, event_id), timeout=30)
    assert await read_model(store, venue) == {
        "new-inquiry": StageTotals(2, 50000),
        "qualified": StageTotals(1, 777),
    }
    board = (await worker.call("GET", "/api/v1/pipeline/board", admin)).json()
    assert board["count"] == 3 and board["totalValue"] == "507.77"


async def test_the_rebuild_equals_a_recomputation_also_while_writes_happen(pipeline):
    venue, admin = pipeline.new_venue()
    contact = await pipeline.known_contact(venue)
    ids = await open_some(pipeline, admin, contact, 12)
    store = pipeline.runtime.store
    # damage the read model: one bucket lost (its copy in the venue's totals is then
    # ahead of it), another bucket's copy wrong
    lost, wrong = bucket_of(ids[0], BUCKETS), bucket_of(ids[1], BUCKETS)
    await store[BUCKETS_COLLECTION].delete_one({"_id": f"{venue}|{lost:03d}"})
    await store[TOTALS_COLLECTION].update_one(
        {"_id": venue}, {"$set": {f"b.{wrong:03d}.t": '{"qualified":[5,5]}'}}
    )
    assert await read_model(store, venue) != await recomputed(store, venue)
    results, _ = await asyncio.gather(rebuild(store, venue), churn(pipeline, admin, ids, 11, 20))
    assert results == {venue: 12}
    assert await read_model(store, venue) == await recomputed(store, venue)
    # and from nothing at all
    await store[BUCKETS_COLLECTION].delete_many({"venueId": venue})
    await store[TOTALS_COLLECTION].delete_many({"venueId": venue})
    assert await read_model(store, venue) == {}
    assert await BoardReadModel(BoardRepository(store)).rebuild(venue) == 12
    assert await read_model(store, venue) == await recomputed(store, venue)
