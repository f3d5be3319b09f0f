"""Rooms and double bookings on the real store: one room, one day, one holder."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

pytestmark = pytest.mark.asyncio(loop_scope="session")

OPPS = "/api/v1/opportunities"
ROOMS = "/api/v1/rooms"
DAY = "2032-05-20T18:00:00Z"


async def room(pipeline, admin, name="Ballroom", capacity=200):
    response = await pipeline.call("POST", ROOMS, admin, {"name": name, "capacity": capacity})
    assert response.status_code == 201, response.text
    return response.json()


async def opportunity(pipeline, admin, **fields):
    contact = await pipeline.known_contact(admin.venue_id)
    body = {"name": "Event", "contactId": contact, "guestCount": 100, **fields}
    response = await pipeline.call("POST", OPPS, admin, body)
    assert response.status_code == 201, response.text
    return response.json()


async def test_rooms_have_unique_names_and_a_capacity(pipeline):
    _, admin = pipeline.new_venue()
    await room(pipeline, admin, "Garden Room", 80)
    again = await pipeline.call("POST", ROOMS, admin, {"name": " garden  room", "capacity": 5})
    assert again.status_code == 409
    assert (
        await pipeline.call("POST", ROOMS, admin, {"name": "X", "capacity": 0})
    ).status_code == 422
    listed = (await pipeline.call("GET", ROOMS, admin)).json()["items"]
    assert [(r["name"], r["capacity"]) for r in listed] == [("Garden Room", 80)]
    _, other = pipeline.new_venue()
    await room(pipeline, other, "Garden Room", 80)  # another venue: fine
    assert (await pipeline.call("GET", ROOMS, other)).json()["items"][0]["id"] != listed[0]["id"]


async def test_capacity_is_checked_against_the_guest_count(pipeline):
    _, admin = pipeline.new_venue()
    small = await room(pipeline, admin, "Snug", 40)
    opp = await opportunity(pipeline, admin, guestCount=60)
    path = f"{OPPS}/{opp['id']}"
    refused = await pipeline.call("PATCH", path, admin, {"roomAssignment": small["id"]})
    assert refused.status_code == 422 and refused.json()["capacity"] == 40
    assert (
        await pipeline.call("PATCH", path, admin, {"guestCount": 30, "roomAssignment": small["id"]})
    ).status_code == 200
    assert (await pipeline.call("PATCH", path, admin, {"guestCount": 41})).status_code == 422
    _, other = pipeline.new_venue()
    elsewhere = await room(pipeline, other, "Theirs", 500)
    foreign = await pipeline.call("PATCH", path, admin, {"roomAssignment": elsewhere["id"]})
    assert foreign.status_code == 422  # another venue's room is no room of ours


async def test_a_room_is_held_once_a_day_in_late_stages_or_won(pipeline):
    _, admin = pipeline.new_venue()
    hall = await room(pipeline, admin)
    holder = await opportunity(
        pipeline, admin, roomAssignment=hall["id"], eventDate=DAY, stage="proposal sent"
    )
    # an early stage does not hold the room: no conflict
    early = await opportunity(
        pipeline, admin, roomAssignment=hall["id"], eventDate="2032-05-20T09:00:00Z"
    )
    path = f"{OPPS}/{early['id']}"
    conflict = await pipeline.call("PATCH", path, admin, {"stage": "contract sent"})
    assert conflict.status_code == 409, conflict.text
    assert conflict.json()["conflictingOpportunityId"] == holder["id"]
    won = await pipeline.call("POST", f"{path}/win", admin)
    assert won.status_code == 409 and won.json()["conflictingOpportunityId"] == holder["id"]
    assert (await pipeline.call("GET", path, admin)).json() == early  # nothing changed
    # the next day is free
    assert (
        await pipeline.call(
            "PATCH", path, admin, {"eventDate": "2032-05-21T09:00:00Z", "stage": "contract sent"}
        )
    ).status_code == 200
    # back to the same day: refused
    assert (await pipeline.call("PATCH", path, admin, {"eventDate": DAY})).status_code == 409
    # once the holder is lost, the day is free
    lost = await pipeline.call(
        "POST", f"{OPPS}/{holder['id']}/lose", admin, {"reason": "cancelled"}
    )
    assert lost.status_code == 200
    moved = await pipeline.call("PATCH", path, admin, {"eventDate": DAY})
    assert moved.status_code == 200, moved.text
    assert (await pipeline.call("POST", f"{path}/win", admin)).status_code == 200
    # moving the holder away frees the day too
    third = await opportunity(
        pipeline, admin, roomAssignment=hall["id"], eventDate=DAY, stage="site visit"
    )
    third_path = f"{OPPS}/{third['id']}"
    assert (
        await pipeline.call("PATCH", third_path, admin, {"stage": "proposal sent"})
    ).status_code == 409
    assert (await pipeline.call("PATCH", path, admin, {"roomAssignment": None})).status_code == 200
    assert (
        await pipeline.call("PATCH", third_path, admin, {"stage": "proposal sent"})
    ).status_code == 200


async def contend(services, admin, hall, count):
    contenders = [
        await opportunity(services[0], admin, roomAssignment=hall["id"], eventDate=DAY)
        for _ in range(count)
    ]
    responses = await asyncio.gather(
        *(
            services[n % len(services)].call(
                "PATCH", f"{OPPS}/{o['id']}", admin, {"stage": "proposal sent"}
            )
            for n, o in enumerate(contenders)
        )
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] + [409] * (count - 1), [r.text for r in responses]
    (winner,) = [r.json() for r in responses if r.status_code == 200]
    for r in responses:
        if r.status_code == 409:
            assert r.json()["conflictingOpportunityId"] == winner["id"]
    claims = (
        await services[0].runtime.store["room_claims"].find({"venueId": admin.venue_id}).to_list()
    )
    assert [c["opportunityId"] for c in claims] == [winner["id"]]
    return winner


async def test_many_parallel_requests_for_one_room_and_day_have_one_winner(pipeline):
    _, admin = pipeline.new_venue()
    hall = await room(pipeline, admin)
    await contend([pipeline], admin, hall, 12)


async def test_two_replicas_never_double_book(pipeline, replica):
    _, admin = pipeline.new_venue()
    hall = await room(pipeline, admin)
    await contend([pipeline, replica], admin, hall, 12)
    hall2 = await room(pipeline, admin, "Second hall")
    contenders = [
        await opportunity(pipeline, admin, roomAssignment=hall2["id"], eventDate=DAY)
        for _ in range(8)
    ]
    wins = await asyncio.gather(
        *(
            (pipeline if n % 2 else replica).call("POST", f"{OPPS}/{o['id']}/win", admin)
            for n, o in enumerate(contenders)
        )
    )
    assert sorted(w.status_code for w in wins) == [200] + [409] * 7


async def test_a_stale_claim_does_not_block_the_room_forever(pipeline):
    venue, admin = pipeline.new_venue()
    hall = await room(pipeline, admin)
    claims = pipeline.runtime.store["room_claims"]
    key = f"{hall['id']}|2032-05-20"
    # a claimer that died before its opportunity was ever saved, long ago
    await claims.insert_one({
        "_id": f"{venue}|{key}", "venueId": venue, "key": key, "opportunityId": "ghost",
        "version": 1, "claimedAt": datetime.now(UTC) - timedelta(minutes=5),
    })  # fmt: skip
    taker = await opportunity(
        pipeline, admin, roomAssignment=hall["id"], eventDate=DAY, stage="proposal sent"
    )
    assert (await claims.find_one({"_id": f"{venue}|{key}"}))["opportunityId"] == taker["id"]
    # a fresh claim by an opportunity still saving blocks (409), a released one does not
    lost = await pipeline.call("POST", f"{OPPS}/{taker['id']}/lose", admin, {"reason": "x"})
    assert lost.status_code == 200
    assert await claims.find_one({"_id": f"{venue}|{key}"}) is None
    pending = await opportunity(pipeline, admin, roomAssignment=hall["id"], eventDate=DAY)
    await claims.insert_one({
        "_id": f"{venue}|{key}", "venueId": venue, "key": key, "opportunityId": pending["id"],
        "version": pending_version(pending) + 1, "claimedAt": datetime.now(UTC),
    })  # fmt: skip
    other = await opportunity(pipeline, admin, roomAssignment=hall["id"], eventDate=DAY)
    blocked = await pipeline.call(
        "PATCH", f"{OPPS}/{other['id']}", admin, {"stage": "proposal sent"}
    )
    assert (
        blocked.status_code == 409 and blocked.json()["conflictingOpportunityId"] == pending["id"]
    )
    # the same claim, abandoned long ago: fenced and taken over
    await claims.update_one(
        {"_id": f"{venue}|{key}"}, {"$set": {"claimedAt": datetime.now(UTC) - timedelta(minutes=5)}}
    )
    taken = await pipeline.call("PATCH", f"{OPPS}/{other['id']}", admin, {"stage": "proposal sent"})
    assert taken.status_code == 200, taken.text


def pending_version(_opportunity):
    return 1  # a freshly created opportunity is at version 1
