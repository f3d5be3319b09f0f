"""The document store: PyMongo's async client, index declarations, cursor paging.

Code must run on MongoDB and on FerretDB 1.24 (the store these machines run): no
multi-document transactions, no change streams, no ``$lookup``/``$facet``, only
``$sum``/``$count`` in ``$group``, no projection in ``find_one_and_update``, ``$pull``
matching whole elements only, and no keys with ``.`` or a leading ``$``. FerretDB also
needs the write-serialising patch ``deploy/local`` builds it with, or concurrent updates
of one document can lose each other (see ``shared/tests/integration/test_store.py``).
Its pushdown patches (``index-pushdown.patch``, ``range-sort-pushdown.patch``) make
FerretDB's SQLite backend build each index on the SQL values of its top-level fields
(``->>``) and read through it for the conditions, sorts and limits it can prove it
applies exactly as MongoDB would, on ``_id`` and on a top-level field that is a key of
one of the collection's indexes and has never held an array (not multikey):

* conditions: equality to a string, number, date, bool, ObjectId or null, ``$eq``,
  ``$gt``/``$gte``/``$lt``/``$lte`` (not to null), ``$ne: None``, ``$in``, in the
  filter's conjunction, in ``$and`` and in ``$or`` (every branch pushable); the keyset
  ``$or`` of ``find_page`` gets an implied bound on its first key, so SQLite seeks to
  the page instead of walking to it;
* a sort whose every key (``_id`` included) only ever held values of one family
  (strings, numbers of any width, dates, bools, ObjectIds) besides null/missing, which
  the patch records per field as it records arrays: then SQLite's order is MongoDB's;
* the limit, when the whole filter was translated exactly (no condition left to the
  handler, and each comparison on a field of the operand's family only) and the whole
  sort was pushed down.

Everything else (other operators, dotted paths, unindexed or mixed-type fields, regular
expressions, ...) is checked by FerretDB on what comes back, or on a full scan, and then
the limit and the sort are applied after loading every matching document, unless the
sort was pushed down: then FerretDB streams the rows in the index's order (checking that
order), applies the other conditions itself and stops at the limit. ``uses_index`` reads
either store's plan; ``reads_one_page`` also requires the sort and limit to be served by
the index (no in-memory sort).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bson import json_util
from pymongo import ASCENDING, AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from gala.errors import InvalidInput

Document = dict[str, Any]
SortKey = tuple[str, int]


@dataclass(frozen=True)
class Index:
    """An index a service needs, declared next to the repository that queries it."""

    collection: str
    keys: Sequence[SortKey]
    unique: bool = False
    name: str | None = None

    @property
    def index_name(self) -> str:
        return self.name or "_".join(f"{key}_{direction}" for key, direction in self.keys)


class Store:
    """One service's database."""

    def __init__(self, url: str, database: str, *, timeout_ms: int = 5000) -> None:
        self.client: AsyncMongoClient[Document] = AsyncMongoClient(
            url,
            tz_aware=True,
            serverSelectionTimeoutMS=timeout_ms,
            connectTimeoutMS=timeout_ms,
            uuidRepresentation="standard",
        )
        self.db: AsyncDatabase[Document] = self.client[database]

    def __getitem__(self, name: str) -> AsyncCollection[Document]:
        return self.db[name]

    async def ping(self) -> None:
        await self.db.command("ping")

    async def ensure_indexes(self, indexes: Sequence[Index]) -> None:
        for index in indexes:
            await self.db[index.collection].create_index(
                list(index.keys), unique=index.unique, name=index.index_name
            )

    async def close(self) -> None:
        await self.client.close()


@dataclass
class Page:
    items: list[Document]
    next_cursor: str | None


@dataclass(frozen=True)
class PageRequest:
    """Keyset paging: an opaque cursor holds the last item's sort values, never an offset."""

    sort: Sequence[SortKey] = field(default_factory=lambda: [("_id", ASCENDING)])
    limit: int = 50
    cursor: str | None = None

    def keys(self) -> list[SortKey]:
        keys = list(self.sort)
        if not keys or keys[-1][0] != "_id":
            keys.append(("_id", keys[-1][1] if keys else ASCENDING))
        return keys


def encode_cursor(values: Sequence[Any]) -> str:
    raw = json_util.dumps(list(values)).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, expected: int) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json_util.loads(raw)
    except (ValueError, binascii.Error, TypeError) as exc:
        raise InvalidInput("The cursor is not valid.") from exc
    if not isinstance(values, list) or len(values) != expected:
        raise InvalidInput("The cursor is not valid for this listing.")
    return values


def _after(keys: Sequence[SortKey], values: Sequence[Any]) -> Document:
    """The filter for items strictly after ``values`` in the order of ``keys``.

    In MongoDB's order null and missing are lowest: after a null comes every non-null
    value ascending and nothing descending, and after a value descending come the lower
    ones and then the nulls (``{key: None}``; not for ``_id``, which is never null). A
    range alone (``$gt``/``$lt``) never matches null, nor ``$gt: None`` anything. A
    range only matches values of its operand's type, so a sort key must hold one type
    (numbers of any width being one) besides null."""
    branches: list[Document] = []
    for i, (key, direction) in enumerate(keys):
        prefix: Document = {k: v for (k, _), v in zip(keys[:i], values[:i], strict=True)}
        value = values[i]
        if direction == ASCENDING:
            branches.append({**prefix, key: {"$ne": None} if value is None else {"$gt": value}})
        elif value is not None:
            branches.append({**prefix, key: {"$lt": value}})
            if key != "_id":
                branches.append({**prefix, key: None})
    if not branches:
        return {"_id": {"$in": []}}
    return {"$or": branches} if len(branches) > 1 else branches[0]


def _value(document: Mapping[str, Any], dotted: str) -> Any:
    value: Any = document
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def page_find(query: Document, request: PageRequest) -> tuple[Document, list[SortKey], int]:
    """The filter, sort and limit of the find that answers one page of ``query``."""
    keys = request.keys()
    if request.cursor:
        query = {"$and": [query, _after(keys, decode_cursor(request.cursor, len(keys)))]}
    return query, keys, request.limit + 1


async def find_page(
    collection: AsyncCollection[Document],
    query: Document,
    request: PageRequest,
    projection: Mapping[str, Any] | None = None,
) -> Page:
    """One page of ``query`` in a stable order, and the cursor to the next one."""
    filter_, keys, limit = page_find(query, request)
    cursor = collection.find(filter_, projection).sort(keys).limit(limit)
    items = await cursor.to_list(length=limit)
    next_cursor = None
    if len(items) > request.limit:
        items = items[: request.limit]
        next_cursor = encode_cursor([_value(items[-1], key) for key, _ in keys])
    return Page(items=items, next_cursor=next_cursor)


async def explain_page(
    collection: AsyncCollection[Document], query: Document, request: PageRequest
) -> Document:
    """The store's plan for exactly the find ``find_page`` sends (see ``uses_index``)."""
    filter_, keys, limit = page_find(query, request)
    command = {"find": collection.name, "filter": filter_, "sort": dict(keys), "limit": limit}
    explained: Document = await collection.database.command("explain", command)
    return explained


async def aggregate_page(
    collection: AsyncCollection[Document],
    pipeline: Sequence[Document],
    sort: Sequence[SortKey],
    limit: int,
    cursor: str | None,
) -> Page:
    """One page of an aggregation's output in the order of ``sort``, whose last key must
    be unique in that output (e.g. an embedded item's id after an ``$unwind``; the
    outer ``_id`` is not). Sort keys are field paths: FerretDB does not evaluate
    ``$``-expressions in ``$project``, so the output cannot be reshaped first."""
    stages = list(pipeline)
    if cursor:
        stages.append({"$match": _after(sort, decode_cursor(cursor, len(sort)))})
    stages += [{"$sort": dict(sort)}, {"$limit": limit + 1}]
    items = await (await collection.aggregate(stages)).to_list(length=None)
    next_cursor = None
    if len(items) > limit:
        items = items[:limit]
        next_cursor = encode_cursor([_value(items[-1], key) for key, _ in sort])
    return Page(items=items, next_cursor=next_cursor)


_INDEX_STAGES = frozenset(
    {
        "IXSCAN",
        "COUNT_SCAN",
        "DISTINCT_SCAN",
        "IDHACK",
        "EXPRESS_IXSCAN",
        "EXPRESS_CLUSTERED_IXSCAN",
        "CLUSTERED_IXSCAN",
    }
)
_CHILD_STAGES = (
    "inputStage",
    "inputStages",
    "queryPlan",
    "winningPlan",
    "shards",
    "thenStage",
    "elseStage",
    "outerStage",
    "innerStage",
)
_SQLITE_INDEX_USES = (
    "USING INDEX",
    "USING COVERING INDEX",
    "USING PRIMARY KEY",
    "USING INTEGER PRIMARY KEY",
)


def _plan_uses_index(node: Any) -> bool:
    """Whether a MongoDB plan tree (a stage, or a list of them) has an index stage."""
    if isinstance(node, list):
        return any(_plan_uses_index(child) for child in node)
    if not isinstance(node, Mapping):
        return False
    if node.get("stage") in _INDEX_STAGES:
        return True
    return any(_plan_uses_index(node[key]) for key in _CHILD_STAGES if key in node)


def _planner_uses_index(planner: Any) -> bool:
    if not isinstance(planner, Mapping):
        return False
    if "winningPlan" in planner:  # MongoDB
        return _plan_uses_index(planner["winningPlan"])
    lines = planner.get("Plan")  # FerretDB on SQLite: EXPLAIN QUERY PLAN lines
    if not isinstance(lines, list):
        return False
    return any(
        isinstance(line, str) and any(use in line for use in _SQLITE_INDEX_USES) for line in lines
    )


def uses_index(explain: Mapping[str, Any]) -> bool:
    """Whether the plan in an ``explain`` command's answer reads through an index.

    On MongoDB: the winning plan has an index stage (``IXSCAN``, ``COUNT_SCAN``,
    ``DISTINCT_SCAN``, ``IDHACK``, ``EXPRESS_IXSCAN``, ...) anywhere in its tree, classic
    or slot-based (``queryPlan``), sharded or, for an aggregation, in its ``$cursor`` stage.
    On FerretDB (SQLite): a line of its plan says ``USING INDEX`` (the ``_id`` index
    included), ``USING COVERING INDEX`` or ``USING [INTEGER] PRIMARY KEY``. A ``SCAN`` is
    no index use even when ``filterPushdown`` is true, as for FerretDB's ``_id`` equality.
    """
    planners = [explain.get("queryPlanner")]
    stages = explain.get("stages")
    if isinstance(stages, list):
        planners += [
            stage["$cursor"].get("queryPlanner")
            for stage in stages
            if isinstance(stage, Mapping) and isinstance(stage.get("$cursor"), Mapping)
        ]
    return any(_planner_uses_index(planner) for planner in planners)


def _plan_has_stage(node: Any, stages: frozenset[str]) -> bool:
    if isinstance(node, list):
        return any(_plan_has_stage(child, stages) for child in node)
    if not isinstance(node, Mapping):
        return False
    if node.get("stage") in stages:
        return True
    return any(_plan_has_stage(node[key], stages) for key in _CHILD_STAGES if key in node)


_SORT_STAGES = frozenset({"SORT", "SORT_KEY_GENERATOR"})


def page_plan_problems(
    explain: Mapping[str, Any], *, exact_filter: bool = True, search: bool = False
) -> list[str]:
    """Why the plan in a find's ``explain`` answer does not read one page through an index
    (empty when it does): it must use an index (``uses_index``) and sort nothing in memory.

    On MongoDB: no ``SORT`` stage in the winning plan (the index gives the order; a limit
    then stops the scan). On FerretDB (SQLite): ``sortPushdown`` and ``limitPushdown``
    (the backend applied the whole filter, the sort and the limit), and no ``USE TEMP
    B-TREE`` line (SQLite walks the index in the sort's order). With ``exact_filter``
    false, for a filter with conditions FerretDB cannot translate (an array field, a
    dotted path, a regular expression), ``limitPushdown`` is not required: with the sort
    pushed down FerretDB streams the index's rows in order, checks those conditions
    itself and stops at the limit. With ``search`` (an ``$or`` of ranges on several
    fields, e.g. a name or an e-mail address starting with what was typed) the matches
    are what is read: each branch through its own index, then sorted (no walk of the
    sort's index can skip what only another branch's index skips): on FerretDB a
    ``TEMP B-TREE`` is allowed under a ``MULTI-INDEX OR`` (it sorts only the matches);
    on MongoDB a ``SORT`` stage is allowed. Explain what ``find_page`` sends (``explain_page``),
    so that the limit is in it."""
    problems: list[str] = []
    if not uses_index(explain):
        problems.append("no index is used")
    planner = explain.get("queryPlanner")
    if isinstance(planner, Mapping) and "winningPlan" in planner:  # MongoDB
        if not search and _plan_has_stage(planner["winningPlan"], _SORT_STAGES):
            problems.append("the winning plan sorts in memory (a SORT stage)")
        return problems
    if explain.get("sortPushdown") is not True:
        problems.append("the sort is not pushed down (sortPushdown)")
    if exact_filter and explain.get("limitPushdown") is not True:
        problems.append("the limit is not pushed down (limitPushdown)")
    lines = planner.get("Plan") if isinstance(planner, Mapping) else None
    lines = [x for x in lines if isinstance(x, str)] if isinstance(lines, list) else []
    sorts = any("TEMP B-TREE" in x for x in lines)
    if sorts and search and not any("MULTI-INDEX OR" in x for x in lines):
        problems.append("SQLite sorts what one index read (a search's branches each need theirs)")
    elif sorts and not search:
        problems.append("SQLite sorts in a temporary b-tree (USE TEMP B-TREE)")
    return problems


def reads_one_page(
    explain: Mapping[str, Any], *, exact_filter: bool = True, search: bool = False
) -> bool:
    """Whether a find's plan reads one page through an index (see ``page_plan_problems``)."""
    return not page_plan_problems(explain, exact_filter=exact_filter, search=search)


DUPLICATE_KEY = 11000
"""The store's error code for a write refused by a unique index."""


def duplicate_key_errors(error: BulkWriteError) -> list[Document] | None:
    """The write errors of a bulk write if every one of them is a duplicate key (the
    documents a concurrent writer or an earlier run wrote first), else ``None``."""
    errors: list[Document] = error.details.get("writeErrors", [])
    if not errors or any(e.get("code") != DUPLICATE_KEY for e in errors):
        return None
    return errors


def utc_now() -> datetime:
    """Now, in UTC, to the millisecond: what the store keeps of a datetime."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
