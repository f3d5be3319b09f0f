"""Which filters read through an index, and that doing so never changes an answer.

The local FerretDB's index-pushdown patch hands SQLite the string/bool equalities on
indexed top-level fields (also inside ``$and``) unless a document ever held an array in
that field; the handler still applies the whole filter to what comes back. MongoDB plans
its own way: only the portable parts (``uses_index``, the results) are checked on both.
"""

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, monitoring

from gala.store import Index, PageRequest, Store, find_page, uses_index
from gala.testing import unique_name

VENUES = ["v1", "v2", "v3", 'v"4\\<&>é\u2028', ""]
STATUSES = ["LEAD", "QUALIFIED", "WON", "LOST"]
OID = ObjectId()

INDEXES = [
    Index("leads", [("venueId", ASCENDING), ("status", ASCENDING), ("createdAt", DESCENDING)]),
    Index("leads", [("archived", ASCENDING)]),
]


class _Finds(monitoring.CommandListener):
    """Keeps the find commands a client sends, to explain exactly those."""

    def __init__(self) -> None:
        self.commands: list[dict[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "find":
            self.commands.append(dict(event.command))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.fixture
async def store(infra):
    name = unique_name("gala_index_")
    store = Store(infra.mongo_url, name)
    await store.ensure_indexes(INDEXES)
    yield store
    await store.client.drop_database(name)
    await store.close()


def _leads() -> list[dict[str, Any]]:
    rng = random.Random(7)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    leads: list[dict[str, Any]] = []
    for i in range(1000):
        lead: dict[str, Any] = {
            "_id": f"l{i:04d}",
            "venueId": rng.choice(VENUES),
            "status": rng.choice(STATUSES),
            "createdAt": start + timedelta(minutes=rng.randrange(5000)),
            "archived": rng.random() < 0.2,
            "name": f"n{i % 37}",
        }
        if i % 50 == 0:  # the same field with other types, or without it
            lead["venueId"] = rng.choice([None, 1, True, OID, {"id": "v1"}, "V1", "v1 "])
        if i % 97 == 0:
            del lead["venueId"]
        if i % 83 == 0:
            lead["status"] = rng.choice([False, {"code": "LEAD"}, 0])
        leads.append(lead)
    return leads


def _matches(doc: dict[str, Any], query: dict[str, Any]) -> bool:
    """Equality filters (and ``$and`` of them) as MongoDB reads them, for the test data."""
    for key, expected in query.items():
        if key == "$and":
            if not all(_matches(doc, part) for part in expected):
                return False
        elif key not in doc:
            return False
        else:
            value = doc[key]
            values = value if isinstance(value, list) else [value]
            if not any(type(v) is type(expected) and v == expected for v in values):
                return False
    return True


async def _explain_find(store: Store, collection: str, query: dict[str, Any], **options: Any):
    return await store.db.command("explain", {"find": collection, "filter": query, **options})


def _ferretdb_pushed(explain: dict[str, Any]) -> int | None:
    """How many conditions FerretDB's SQLite plan searches its index with (None on MongoDB)."""
    plan = explain.get("queryPlanner", {}).get("Plan")
    if plan is None:
        return None
    return sum(line.count("<expr>=?") for line in plan)


def _ferretdb_indexes(explain: dict[str, Any]) -> list[str] | None:
    """The indexes FerretDB's SQLite plan reads (without the table's prefix; None on
    MongoDB)."""
    plan = explain.get("queryPlanner", {}).get("Plan")
    if plan is None:
        return None
    return [
        line.split(" USING INDEX ")[1].split(" ")[0].split("_", 2)[2]
        for line in plan
        if " USING INDEX " in line
    ]


async def test_a_venue_and_status_listing_reads_through_an_index(store):
    await store["leads"].insert_many(_leads())
    query = {"venueId": "v1", "status": "LEAD"}
    sort = {"createdAt": -1, "_id": -1}

    explain = await _explain_find(store, "leads", query, sort=sort, limit=20)
    assert uses_index(explain)
    assert _ferretdb_pushed(explain) in (None, 2)

    assert uses_index(await _explain_find(store, "leads", {"archived": True}))
    # the by-id reads every repository and the outbox relay make
    some_id = (await store["leads"].find_one({}, {"_id": 1}))["_id"]
    assert uses_index(await _explain_find(store, "leads", {"_id": some_id}))
    assert uses_index(await _explain_find(store, "leads", {"_id": some_id, "venueId": "v1"}))
    assert not uses_index(await _explain_find(store, "leads", {"name": "n3"}, limit=20))
    # $eq is pushed down too (and MongoDB uses the index anyway)
    explain = await _explain_find(store, "leads", {"venueId": {"$eq": "v1"}})
    assert _ferretdb_pushed(explain) in (None, 1)


async def test_a_lookup_of_many_ids_reads_through_the_id_index(store):
    """A consumer's batch looks up its processed events, and a bulk projection its
    existing records, with one ``_id: {$in: [...]}``: it must not read the collection."""
    leads = _leads()
    await store["leads"].insert_many(leads)
    extra = [{"_id": OID, "venueId": "v1"}, {"_id": 7, "venueId": "v1"}]
    await store["leads"].insert_many(extra)
    wanted = [f"l{i:04d}" for i in range(0, 2000, 3)]  # 667 ids, a third of them absent

    async def ids(query: dict[str, Any]) -> list[Any]:
        return [doc["_id"] for doc in await store["leads"].find(query, {"_id": 1}).to_list(None)]

    query = {"_id": {"$in": wanted}}
    assert uses_index(await _explain_find(store, "leads", query))
    assert sorted(await ids(query)) == [i for i in wanted if int(i[1:]) < 1000]
    with_venue = {"venueId": "v1", "_id": {"$in": wanted}}
    assert uses_index(await _explain_find(store, "leads", with_venue))
    assert sorted(await ids(with_venue)) == sorted(
        lead["_id"] for lead in leads if lead["_id"] in wanted and _matches(lead, {"venueId": "v1"})
    )
    # with an equality on another indexed field (the outbox relay's claim of pending
    # documents): read through the _id index, not by walking every archived lead
    claim = {"_id": {"$in": wanted}, "archived": True}
    assert _ferretdb_indexes(await _explain_find(store, "leads", claim)) in (None, ["_id_"])
    assert sorted(await ids(claim)) == sorted(
        lead["_id"] for lead in leads if lead["_id"] in wanted and lead["archived"] is True
    )
    # ids of other types, null, and more values than are pushed down: still exact answers
    assert sorted(map(str, await ids({"_id": {"$in": ["l0001", OID, 7, None]}}))) == sorted(
        ["l0001", str(OID), "7"]
    )
    many = [f"l{i:04d}" for i in range(20_000)]
    assert len(await ids({"_id": {"$in": many}})) == 1000


async def test_the_cursor_pages_of_find_page_read_through_the_index(store, infra):
    await store["leads"].insert_many(_leads())
    finds = _Finds()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        infra.mongo_url, tz_aware=True, event_listeners=[finds]
    )
    try:
        leads = client[store.db.name]["leads"]
        query = {"venueId": "v2", "status": "QUALIFIED"}
        request = PageRequest(sort=[("createdAt", DESCENDING)], limit=7)
        seen: list[str] = []
        while True:
            page = await find_page(leads, query, request)
            seen += [item["_id"] for item in page.items]
            if page.next_cursor is None:
                break
            request = PageRequest(sort=request.sort, limit=7, cursor=page.next_cursor)
    finally:
        await client.close()

    expected = sorted(
        (lead for lead in _leads() if _matches(lead, query)),
        key=lambda lead: (lead["createdAt"], lead["_id"]),
        reverse=True,
    )
    assert seen == [lead["_id"] for lead in expected]
    assert len(finds.commands) > 2

    later = finds.commands[-1]  # {"$and": [query, {"$or": [...after the cursor...]}]}
    assert set(later["filter"]) == {"$and"}
    assert "$or" in later["filter"]["$and"][1]
    explain = await _explain_find(
        store, "leads", later["filter"], sort=later["sort"], limit=later["limit"]
    )
    assert uses_index(explain)
    assert _ferretdb_pushed(explain) in (None, 2)


async def test_pushed_down_filters_find_what_a_scan_finds(store):
    leads = _leads()
    await store["leads"].insert_many(leads)
    queries: list[dict[str, Any]] = [
        {"venueId": venue, "status": status} for venue in VENUES for status in STATUSES
    ]
    queries += [
        {"venueId": "v1"},
        {"status": "LOST"},
        {"archived": True},
        {"archived": False, "venueId": "v3"},
        {"venueId": True},
        {"venueId": "V1"},
        {"venueId": str(OID)},  # an ObjectId's hex is stored as the same JSON string
        {"status": False},
        {"_id": "l0100", "venueId": "v1"},
        {"$and": [{"venueId": "v2"}, {"$and": [{"status": "WON"}, {"archived": False}]}]},
        {"$and": [{"venueId": "v2"}, {"venueId": "v3"}]},
    ]
    for query in queries:
        found = sorted(doc["_id"] for doc in await store["leads"].find(query).to_list(None))
        expected = sorted(lead["_id"] for lead in leads if _matches(lead, query))
        assert found == expected, query
        # the same filter in a shape that is never pushed down
        scanned = {"$or": [query]}
        assert sorted(d["_id"] for d in await store["leads"].find(scanned).to_list(None)) == found


SHARED = [
    {"_id": "s1", "venueId": "v1", "clientIds": "u1"},
    {"_id": "s2", "venueId": "v1", "clientIds": ["u1", "u2"]},
    {"_id": "s3", "venueId": "v1", "clientIds": "u3"},
    {"_id": "s4", "venueId": "v2", "clientIds": "u1"},
]


@pytest.mark.parametrize("arrival", ["insert", "update", "index_after_data"])
async def test_an_array_in_an_indexed_field_is_never_missed(store, arrival):
    shared = store[f"shared_{arrival}"]
    indexes = [Index(shared.name, [("venueId", ASCENDING), ("clientIds", ASCENDING)])]
    docs = [dict(doc) for doc in SHARED]
    if arrival == "update":
        docs[1]["clientIds"] = "u2"
    if arrival != "index_after_data":
        await store.ensure_indexes(indexes)
    await shared.insert_many(docs)
    if arrival == "update":
        explain = await _explain_find(store, shared.name, {"clientIds": "u1"})
        assert explain.get("filterPushdown") in (None, True)  # no array in it yet
        await shared.update_one({"_id": "s2"}, {"$set": {"clientIds": ["u1", "u2"]}})
    if arrival == "index_after_data":
        await store.ensure_indexes(indexes)

    async def ids(query: dict[str, Any]) -> list[str]:
        return sorted(doc["_id"] for doc in await shared.find(query).to_list(None))

    assert await ids({"clientIds": "u1"}) == ["s1", "s2", "s4"]
    assert await ids({"venueId": "v1", "clientIds": "u1"}) == ["s1", "s2"]
    assert await ids({"$and": [{"venueId": "v1"}, {"clientIds": "u2"}]}) == ["s2"]
    assert await shared.count_documents({"venueId": "v1", "clientIds": "u2"}) == 1

    explain = await _explain_find(store, shared.name, {"venueId": "v1", "clientIds": "u1"})
    assert uses_index(explain)
    assert _ferretdb_pushed(explain) in (None, 1)  # venueId still is, clientIds is not
    explain = await _explain_find(store, shared.name, {"clientIds": "u1"})
    assert explain.get("filterPushdown") in (None, False)


async def test_counts_updates_and_deletes_touch_exactly_the_matching_documents(store):
    leads = _leads()
    await store["leads"].insert_many(leads)
    coll = store["leads"]

    def expected(query: dict[str, Any]) -> list[str]:
        return sorted(lead["_id"] for lead in leads if _matches(lead, query))

    query = {"venueId": "v1", "status": "LEAD"}
    assert await coll.count_documents(query) == len(expected(query))
    assert await coll.count_documents({"$and": [query, {"archived": True}]}) == len(
        expected({**query, "archived": True})
    )
    assert sorted(await coll.distinct("_id", {"venueId": "v2"})) == expected({"venueId": "v2"})
    grouped = await (
        await coll.aggregate(
            [
                {"$match": {"venueId": "v3", "status": "WON"}},
                {"$group": {"_id": None, "n": {"$sum": 1}}},
            ]
        )
    ).to_list(None)
    assert grouped[0]["n"] == len(expected({"venueId": "v3", "status": "WON"}))

    result = await coll.update_many(query, {"$set": {"touched": True}})
    assert result.matched_count == result.modified_count == len(expected(query))
    touched = await coll.find({"touched": True}).to_list(None)
    assert sorted(doc["_id"] for doc in touched) == expected(query)

    # an update of the pushed-down field itself
    moved = {"venueId": "v2", "status": "QUALIFIED"}
    result = await coll.update_many(moved, {"$set": {"status": "WON"}})
    assert result.modified_count == len(expected(moved))
    after = [{**lead, "status": "WON"} if _matches(lead, moved) else lead for lead in leads]
    won = {"venueId": "v2", "status": "WON"}
    assert sorted(d["_id"] for d in await coll.find(won).to_list(None)) == sorted(
        lead["_id"] for lead in after if _matches(lead, won)
    )
    assert await coll.count_documents(moved) == 0

    claimed = await coll.find_one_and_update(
        {"venueId": "v3", "status": "LOST"}, {"$set": {"claimed": True}}
    )
    assert claimed is not None
    assert claimed["_id"] in expected({"venueId": "v3", "status": "LOST"})

    doomed = {"$and": [{"venueId": "v3"}, {"status": "LOST"}]}
    result = await coll.delete_many(doomed)
    assert result.deleted_count == len(expected(doomed))
    remaining = sorted(d["_id"] for d in await coll.find({}, {"_id": 1}).to_list(None))
    assert remaining == sorted(lead["_id"] for lead in leads if not _matches(lead, doomed))


def _mongo(plan: dict[str, Any]) -> dict[str, Any]:
    return {"queryPlanner": {"winningPlan": plan, "rejectedPlans": []}}


def _ferretdb(*details: str) -> dict[str, Any]:
    lines = [f"id={i + 2} parent=0 notused=0 detail={d}" for i, d in enumerate(details)]
    return {"queryPlanner": {"Plan": lines}, "filterPushdown": True}


IXSCAN = {"stage": "IXSCAN", "indexName": "venueId_1", "isMultiKey": False}


@pytest.mark.parametrize(
    ("explain", "expected"),
    [
        (_mongo({"stage": "FETCH", "inputStage": IXSCAN}), True),
        (_mongo({"stage": "LIMIT", "inputStage": {"stage": "FETCH", "inputStage": IXSCAN}}), True),
        (
            _mongo({"queryPlan": {"stage": "FETCH", "inputStage": IXSCAN}, "slotBasedPlan": {}}),
            True,
        ),
        (_mongo({"stage": "IDHACK"}), True),
        (_mongo({"isCached": False, "stage": "EXPRESS_IXSCAN"}), True),
        (_mongo({"stage": "COUNT", "inputStage": {"stage": "COUNT_SCAN"}}), True),
        (_mongo({"stage": "PROJECTION_COVERED", "inputStage": {"stage": "DISTINCT_SCAN"}}), True),
        (
            _mongo(
                {
                    "stage": "SUBPLAN",
                    "inputStage": {
                        "stage": "FETCH",
                        "inputStage": {"stage": "OR", "inputStages": [IXSCAN, IXSCAN]},
                    },
                }
            ),
            True,
        ),
        (
            _mongo(
                {
                    "stage": "SINGLE_SHARD",
                    "shards": [
                        {"shardName": "s0", "winningPlan": {"stage": "FETCH", "inputStage": IXSCAN}}
                    ],
                }
            ),
            True,
        ),
        (
            {"stages": [{"$cursor": {"queryPlanner": {"winningPlan": IXSCAN}}}, {"$group": {}}]},
            True,
        ),
        (_mongo({"stage": "COLLSCAN", "filter": {"stage": {"$eq": "IXSCAN"}}}), False),
        (
            {
                "queryPlanner": {
                    "winningPlan": {"stage": "COLLSCAN"},
                    "rejectedPlans": [{"stage": "FETCH", "inputStage": IXSCAN}],
                }
            },
            False,
        ),
        (
            {"stages": [{"$cursor": {"queryPlanner": {"winningPlan": {"stage": "COLLSCAN"}}}}]},
            False,
        ),
        (_ferretdb("SEARCH leads_1 USING INDEX leads_1_venueId_1 (<expr>=?)"), True),
        (_ferretdb("SEARCH leads_1 USING INDEX leads_1__id_ (<expr>=?)"), True),
        (_ferretdb("SEARCH leads_1 USING COVERING INDEX leads_1_v (<expr>=?)"), True),
        (_ferretdb("SEARCH leads_1 USING INTEGER PRIMARY KEY (rowid=?)"), True),
        (_ferretdb("SCAN leads_1"), False),  # FerretDB's _id condition: pushed, but a scan
        (_ferretdb("SCAN leads_1", "USE TEMP B-TREE FOR ORDER BY"), False),
        ({"queryPlanner": {}}, False),
        ({"ok": 1.0}, False),
    ],
)
def test_uses_index_reads_either_stores_plan(explain, expected):
    assert uses_index(explain) is expected
