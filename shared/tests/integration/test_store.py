"""The store's behaviour that services rely on, checked on the real store."""

import asyncio

import pytest
from pymongo import ASCENDING, DESCENDING, ReturnDocument, UpdateOne

from gala.errors import InvalidInput
from gala.store import PageRequest, Store, find_page
from gala.testing import unique_name


@pytest.fixture
async def stores(infra):
    """Four clients on one fresh database, as four replicas would be."""
    name = unique_name("gala_store_")
    clients = [Store(infra.mongo_url, name) for _ in range(4)]
    yield clients
    await clients[0].client.drop_database(name)
    for store in clients:
        await store.close()


async def test_concurrent_updates_of_one_document_are_atomic(stores):
    """MongoDB applies each single-document write atomically; so must the local store."""
    await stores[0]["counters"].insert_one({"_id": "c", "n": 0})

    async def bump(store: Store) -> None:
        for _ in range(50):
            await store["counters"].update_one({"_id": "c"}, {"$inc": {"n": 1}})

    await asyncio.gather(*(bump(store) for store in stores))
    assert (await stores[0]["counters"].find_one({"_id": "c"}))["n"] == 200


async def test_a_conditional_claim_is_won_by_exactly_one_replica(stores):
    await stores[0]["jobs"].insert_many([{"_id": i, "owner": None} for i in range(60)])

    async def claim_all(store: Store, me: str) -> list[int]:
        won = []
        while True:
            job = await store["jobs"].find_one_and_update(
                {"owner": None}, {"$set": {"owner": me}}, return_document=ReturnDocument.AFTER
            )
            if job is None:
                return won
            won.append(job["_id"])

    results = await asyncio.gather(*(claim_all(s, f"r{i}") for i, s in enumerate(stores)))
    claimed = [job for won in results for job in won]
    assert sorted(claimed) == list(range(60))  # every job once, none twice


async def test_a_bulk_write_of_many_updates_that_match_completes(stores):
    """One update command of hundreds of statements that each match a document (a
    projection's bulk write of a batch) completes, and the store takes writes after it.
    The local FerretDB once kept each statement's query open until the whole command
    ended: at 100 statements its pool of connections ran out and every write waited."""
    things = stores[0]["things"]
    await things.insert_many([{"_id": f"t{i}", "n": 0} for i in range(300)])
    updates = [UpdateOne({"_id": f"t{i}"}, {"$set": {"n": i}}, upsert=True) for i in range(300)]
    result = await asyncio.wait_for(things.bulk_write(updates, ordered=False), 30)
    assert (result.matched_count, result.modified_count) == (300, 299)
    await asyncio.wait_for(stores[1]["other"].insert_one({"_id": "after"}), 10)
    assert await things.count_documents({"n": {"$gt": 0}}) == 299


async def test_cursor_pages_walk_a_sorted_listing_without_gaps_or_repeats(stores):
    people = stores[0]["people"]
    await people.insert_many(
        [{"_id": f"p{i:02d}", "heat": i % 5, "name": f"n{i}"} for i in range(23)]
    )
    request = PageRequest(sort=[("heat", DESCENDING)], limit=5)
    seen: list[str] = []
    pages = 0
    while True:
        page = await find_page(people, {}, request)
        seen.extend(item["_id"] for item in page.items)
        pages += 1
        if page.next_cursor is None:
            break
        request = PageRequest(sort=request.sort, limit=5, cursor=page.next_cursor)
    assert pages == 5
    assert sorted(seen) == sorted(f"p{i:02d}" for i in range(23))
    heats = [int(pid[1:]) % 5 for pid in seen]
    assert heats == sorted(heats, reverse=True)


async def test_cursor_paging_honours_the_filter_and_ascending_order(stores):
    people = stores[0]["people"]
    await people.insert_many([{"_id": i, "venueId": "a" if i % 2 else "b"} for i in range(10)])
    first = await find_page(
        people, {"venueId": "a"}, PageRequest(sort=[("_id", ASCENDING)], limit=3)
    )
    assert [p["_id"] for p in first.items] == [1, 3, 5]
    second = await find_page(
        people,
        {"venueId": "a"},
        PageRequest(sort=[("_id", ASCENDING)], limit=3, cursor=first.next_cursor),
    )
    assert [p["_id"] for p in second.items] == [7, 9]
    assert second.next_cursor is None


async def test_a_forged_cursor_is_invalid_input(stores):
    with pytest.raises(InvalidInput):
        await find_page(stores[0]["people"], {}, PageRequest(cursor="%%%not-a-cursor"))
    with pytest.raises(InvalidInput):
        await find_page(stores[0]["people"], {}, PageRequest(cursor="W10"))  # "[]"
