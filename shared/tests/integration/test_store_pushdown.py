"""Pages read through an index give exactly MongoDB's answer, for every listing shape.

On the local FerretDB the pushdown patches translate equality, ranges, the keyset
cursor's ``$or``, the sort and the limit into SQLite on the indexes' expressions, when
the field's recorded types allow it (see ``gala.store``). The reference here is computed
in Python with MongoDB's rules (BSON order: null and missing lowest, numbers by value
whatever their width, strings by their UTF-8 bytes; type bracketing for comparisons),
so it bypasses the store entirely; every page is also checked to be read through an
index with the sort and limit pushed down (``reads_one_page``), except on a field of
mixed types, where the pushdown must step back (and the answer must still be right).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cmp_to_key
from typing import Any

import pytest
from bson import Int64, ObjectId
from pymongo import ASCENDING, DESCENDING

from gala.store import (
    Index,
    PageRequest,
    Store,
    explain_page,
    find_page,
    page_plan_problems,
    reads_one_page,
    uses_index,
)
from gala.testing import unique_name

VENUES = ["v1", "v2", 'v"3\\<&>é']
STRINGS = [
    "",
    "a",
    "B",
    "b",
    "é",
    "e\u0301",
    'a"b',
    "a\\b",
    "<&>",
    "\u2028",
    "😀",
    "Z",
    "zz",
    "a b",
]
START = datetime(2025, 1, 1, tzinfo=UTC)
MISSING = object()

# field -> a value maker; "mixed" holds numbers and strings (no sort pushdown there)
FIELDS: dict[str, Callable[[random.Random], Any]] = {
    "n": lambda rng: rng.choice(
        [rng.randrange(-5, 6), Int64(rng.randrange(-5, 6)), rng.randrange(-10, 11) / 4, 2**40]
    ),
    "s": lambda rng: rng.choice(STRINGS),
    "d": lambda rng: START + timedelta(milliseconds=rng.randrange(0, 10**9, 250)),
    "b": lambda rng: rng.random() < 0.5,
    "mixed": lambda rng: rng.choice([rng.randrange(5), rng.choice(STRINGS)]),
}
SORTED = ["n", "s", "d", "b", "mixed"]

INDEXES = [
    Index("items", [("venueId", ASCENDING), (f, ASCENDING), ("_id", ASCENDING)]) for f in SORTED
] + [
    Index("items", [("venueId", ASCENDING), ("flag", ASCENDING), ("n", DESCENDING), ("_id", 1)]),
]


def _items() -> list[dict[str, Any]]:
    rng = random.Random(16)
    items: list[dict[str, Any]] = []
    for i in range(400):
        item: dict[str, Any] = {
            "_id": f"i{rng.randrange(10**6):06d}-{i}",
            "venueId": rng.choice(VENUES),
        }
        item["flag"] = rng.random() < 0.3
        for name, make in FIELDS.items():
            roll = rng.random()
            if roll < 0.1:
                continue  # missing
            item[name] = None if roll < 0.2 else make(rng)
        items.append(item)
    return items


# --- MongoDB's rules, in Python --------------------------------------------------------------


def _family(value: Any) -> int:
    if value is None or value is MISSING:
        return 0
    if isinstance(value, bool):
        return 4
    if isinstance(value, int | float):
        return 1
    if isinstance(value, str):
        return 2
    if isinstance(value, ObjectId):
        return 3
    if isinstance(value, datetime):
        return 5
    raise AssertionError(f"no such value in these tests: {value!r}")


def _compare(a: Any, b: Any) -> int:
    fa, fb = _family(a), _family(b)
    if fa != fb:
        return -1 if fa < fb else 1
    if fa == 0:
        return 0
    x, y = (a.encode(), b.encode()) if fa == 2 else (a, b)
    return -1 if x < y else (1 if x > y else 0)


def _condition(value: Any, condition: Any) -> bool:
    if isinstance(condition, dict) and condition and next(iter(condition)).startswith("$"):
        for op, operand in condition.items():
            if op == "$ne":
                if _condition(value, operand):
                    return False
                continue
            if op == "$in":
                if not any(_condition(value, o) for o in operand):
                    return False
                continue
            if op == "$eq":
                if not _condition(value, operand):
                    return False
                continue
            if operand is None or _family(value) != _family(operand):  # type bracketing
                return False
            c = _compare(value, operand)
            if not {"$gt": c > 0, "$gte": c >= 0, "$lt": c < 0, "$lte": c <= 0}[op]:
                return False
        return True
    if condition is None:
        return value is None or value is MISSING
    return _family(value) == _family(condition) and _compare(value, condition) == 0


def _matches(item: dict[str, Any], query: dict[str, Any]) -> bool:
    for key, condition in query.items():
        if key == "$and":
            if not all(_matches(item, part) for part in condition):
                return False
        elif key == "$or":
            if not any(_matches(item, part) for part in condition):
                return False
        elif not _condition(item.get(key, MISSING), condition):
            return False
    return True


def _expected(
    items: list[dict[str, Any]], query: dict[str, Any], keys: list[tuple[str, int]]
) -> list[str]:
    def order(a: dict[str, Any], b: dict[str, Any]) -> int:
        for key, direction in keys:
            c = _compare(a.get(key, MISSING), b.get(key, MISSING))
            if c:
                return c * direction
        return 0

    return [
        item["_id"]
        for item in sorted(filter(lambda i: _matches(i, query), items), key=cmp_to_key(order))
    ]


# --- the store --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def loaded(infra):
    name = unique_name("gala_pushdown_")
    store = Store(infra.mongo_url, name)
    await store.ensure_indexes(INDEXES)
    items = _items()
    await store["items"].insert_many([dict(item) for item in items])
    yield store, items
    await store.client.drop_database(name)
    await store.close()


def _ferretdb(explain: dict[str, Any]) -> bool:
    return "winningPlan" not in explain.get("queryPlanner", {})


async def _pages(
    store: Store,
    query: dict[str, Any],
    sort: list[tuple[str, int]],
    limit: int,
    *,
    one_page: bool,
    exact: bool = True,
    search: bool = False,
    pages: int = 500,
    collection_name: str = "items",
) -> list[str]:
    """Every page of ``query`` (up to ``pages``) through find_page, each page's plan checked."""
    collection = store[collection_name]
    request = PageRequest(sort=sort, limit=limit)
    seen: list[str] = []
    for _ in range(pages):
        explain = await explain_page(collection, query, request)
        assert uses_index(explain), (query, sort, explain)
        if one_page:
            problems = page_plan_problems(explain, exact_filter=exact, search=search)
            assert not problems, (query, sort, problems, explain)
        elif _ferretdb(explain):
            assert explain["sortPushdown"] is False, (query, sort)
        page = await find_page(collection, query, request)
        seen += [item["_id"] for item in page.items]
        if page.next_cursor is None:
            return seen
        request = PageRequest(sort=sort, limit=limit, cursor=page.next_cursor)
    assert pages < 500, "paging does not end"
    return seen


SHAPES: dict[str, Callable[[str], dict[str, Any]]] = {
    "venue": lambda venue: {"venueId": venue},
    "venue and flag": lambda venue: {"venueId": venue, "flag": False},
    "n range": lambda venue: {"venueId": venue, "n": {"$gte": -1, "$lt": 2.5}},
    "s range": lambda venue: {"venueId": venue, "s": {"$gt": "B", "$lte": "é"}},
    "d range": lambda venue: {"venueId": venue, "d": {"$gte": START + timedelta(days=3)}},
    "not null": lambda venue: {"venueId": venue, "s": {"$ne": None}},
    "null": lambda venue: {"venueId": venue, "b": None},
    "ne": lambda venue: {"venueId": venue, "b": {"$ne": True}},
    "in": lambda venue: {"venueId": venue, "s": {"$in": ["a", "b", "😀"]}},
    "or": lambda venue: {"venueId": venue, "$or": [{"s": {"$gte": "a", "$lt": "b"}}, {"n": 1}]},
}
SEARCHES = {"or"}
# conditions FerretDB leaves to itself (not SQLite): the sort is pushed, the limit is not
INEXACT: dict[str, Callable[[str], dict[str, Any]]] = {
    "regex": lambda venue: {"venueId": venue, "s": {"$regex": "^a"}},
    "unindexed": lambda venue: {"venueId": venue, "other": {"$exists": False}},
}


@pytest.mark.parametrize("field", SORTED)
@pytest.mark.parametrize("direction", [ASCENDING, DESCENDING])
@pytest.mark.parametrize("shape", list(SHAPES))
async def test_every_page_is_mongodbs_answer_read_through_an_index(loaded, field, direction, shape):
    store, items = loaded
    venue = VENUES[sum(map(ord, field + shape)) % len(VENUES)]
    query = SHAPES[shape](venue)
    sort = [(field, direction)]
    keys = PageRequest(sort=sort).keys()
    if field == "mixed":
        # numbers and strings: the store sorts (no pushdown); only the first page is
        # compared, as a cursor's range never crosses types (keyset paging needs one type)
        seen = await _pages(store, query, sort, 7, one_page=False, pages=1)
        assert seen == _expected(items, query, keys)[:7]
    else:
        # an $or of two fields is a search: each branch read through its index, then sorted
        seen = await _pages(store, query, sort, 7, one_page=True, search=shape in SEARCHES)
        assert seen == _expected(items, query, keys)


@pytest.mark.parametrize("field", ["n", "s"])
@pytest.mark.parametrize("direction", [ASCENDING, DESCENDING])
@pytest.mark.parametrize("shape", list(INEXACT))
async def test_a_filter_sqlite_cannot_apply_still_pages_in_the_index_order(
    loaded, field, direction, shape
):
    store, items = loaded
    query = INEXACT[shape]("v2")
    sort = [(field, direction)]
    seen = await _pages(store, query, sort, 7, one_page=True, exact=False)
    expected = [i["_id"] for i in items if i["venueId"] == "v2" and _inexact(shape, i)]
    assert seen == [
        i
        for i in _expected(items, {"venueId": "v2"}, PageRequest(sort=sort).keys())
        if i in expected
    ]


def _inexact(shape: str, item: dict[str, Any]) -> bool:
    if shape == "regex":
        return isinstance(item.get("s"), str) and item["s"].startswith("a")
    return "other" not in item


async def test_a_compound_sort_on_an_index_with_descending_keys(loaded):
    store, items = loaded
    query = {"venueId": "v1", "flag": True}
    sort = [("n", DESCENDING), ("_id", DESCENDING)]
    assert await _pages(store, query, sort, 5, one_page=True) == _expected(items, query, sort)


async def test_a_new_type_in_a_field_stops_its_sort_pushdown_and_answers_stay_right(infra):
    name = unique_name("gala_pushdown_types_")
    store = Store(infra.mongo_url, name)
    try:
        await store.ensure_indexes([Index("t", [("venueId", 1), ("k", 1), ("_id", 1)])])
        items: list[dict[str, Any]] = [
            {"_id": f"t{i:03d}", "venueId": "v", "k": i % 17} for i in range(60)
        ]
        await store["t"].insert_many([dict(i) for i in items])
        query, sort = {"venueId": "v"}, [("k", DESCENDING)]
        keys = PageRequest(sort=sort).keys()
        explain = await explain_page(store["t"], query, PageRequest(sort=sort, limit=5))
        assert reads_one_page(explain), page_plan_problems(explain)

        # numbers whose JSON text sorts otherwise ("100" < "99"), then a string
        more = [
            {"_id": "t900", "venueId": "v", "k": 100},
            {"_id": "t901", "venueId": "v", "k": 99.5},
        ]
        await store["t"].insert_many([dict(i) for i in more])
        items += more
        seen = await _pages(store, query, sort, 5, one_page=True, collection_name="t")
        assert seen == _expected(items, query, keys)

        await store["t"].update_one({"_id": "t001"}, {"$set": {"k": "text"}})
        items[1]["k"] = "text"
        explain = await explain_page(store["t"], query, PageRequest(sort=sort, limit=5))
        if _ferretdb(explain):
            assert explain["sortPushdown"] is False
            assert explain["limitPushdown"] is False
        # (the first page only: a cursor's range never crosses types)
        seen = await _pages(store, query, sort, 5, one_page=False, pages=1, collection_name="t")
        assert seen == _expected(items, query, keys)[:5]
    finally:
        await store.client.drop_database(name)
        await store.close()


def _mongo(plan: dict[str, Any]) -> dict[str, Any]:
    return {"queryPlanner": {"winningPlan": plan, "rejectedPlans": []}}


def _sqlite(*details: str, sort: bool = True, limit: bool = True) -> dict[str, Any]:
    lines = [f"id={i + 2} parent=0 notused=0 detail={d}" for i, d in enumerate(details)]
    return {
        "queryPlanner": {"Plan": lines},
        "filterPushdown": True,
        "sortPushdown": sort,
        "limitPushdown": limit,
    }


IXSCAN = {"stage": "IXSCAN", "indexName": "venueId_1_n_1__id_1"}
SEARCH = "SEARCH items_1 USING INDEX items_1_venueId_1_n_1__id_1 (<expr>=?)"


@pytest.mark.parametrize(
    ("explain", "expected"),
    [
        (_mongo({"stage": "LIMIT", "inputStage": {"stage": "FETCH", "inputStage": IXSCAN}}), True),
        (_mongo({"stage": "SORT", "inputStage": {"stage": "FETCH", "inputStage": IXSCAN}}), False),
        (_mongo({"stage": "SORT", "inputStage": {"stage": "COLLSCAN"}}), False),
        (_mongo({"stage": "LIMIT", "inputStage": {"stage": "COLLSCAN"}}), False),
        (_sqlite(SEARCH), True),
        (_sqlite(SEARCH, "USE TEMP B-TREE FOR ORDER BY"), False),
        (_sqlite(SEARCH, "USE TEMP B-TREE FOR RIGHT PART OF ORDER BY"), False),
        (_sqlite(SEARCH, sort=False), False),
        (_sqlite(SEARCH, limit=False), False),
        (_sqlite("SCAN items_1"), False),
    ],
)
def test_reads_one_page_reads_either_stores_plan(explain, expected):
    assert reads_one_page(explain) is expected
    assert bool(page_plan_problems(explain)) is not expected
