"""The document store: PyMongo's async client, index declarations, cursor paging.

Code must run on MongoDB and on FerretDB 1.24 (the store these machines run): no
multi-document transactions, no change streams, no ``$lookup``/``$facet``, only
``$sum``/``$count`` in ``$group``, no projection in ``find_one_and_update``, ``$pull``
matching whole elements only, and no keys with ``.`` or a leading ``$``. FerretDB also
needs the write-serialising patch ``deploy/local`` builds it with, or concurrent updates
of one document can lose each other (see ``shared/tests/integration/test_store.py``).
Its index-pushdown patch makes FerretDB's SQLite backend read through an index for
equality on ``_id`` (the ``_id_`` index), and for equality to a plain string or bool on
a top-level field that is a key of one of the collection's indexes and has never held an
array in any of its documents (not multikey), at the filter's top level or inside its
top-level ``$and`` (recursively). Every other condition is checked on what those return,
or on a full scan; ``uses_index`` reads either store's plan.
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
    """The filter for items strictly after ``values`` in the order of ``keys``."""
    branches: list[Document] = []
    for i, (key, direction) in enumerate(keys):
        branch: Document = {k: v for (k, _), v in zip(keys[:i], values[:i], strict=True)}
        branch[key] = {"$gt" if direction == ASCENDING else "$lt": values[i]}
        branches.append(branch)
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


def utc_now() -> datetime:
    """Now, in UTC, to the millisecond: what the store keeps of a datetime."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
