"""The board's store: a read model of per-stage counts and sums, and the first cards.

Why a read model: summing a venue's open opportunities at each read grows with the
venue (1.5 s at 10,000 on the local store). The board instead reads ONE small document
per venue, whatever the venue's size, and the first cards of each stage with a limited
find on the ``board`` index (venue, outcome, stage, updatedAt).

How it stays exact without multi-document transactions (the local store has none, and
a bare ``$inc`` is not idempotent: a redelivered change would count twice):

- ``board_buckets``: per venue, :data:`~pipeline.board.domain.BUCKETS` documents
  (``<venue>|<k>``, k a stable hash of the opportunity id). Each holds, in one document,
  the contribution of each of its opportunities (``e.<id>``: ``[version, stage while
  open, value in minor units]`` as compact JSON text), the bucket's per-stage totals
  (``t.<stage>``: count ``n`` and sum ``m``) and a revision ``r``. An opportunity's
  change is ONE conditional update of its bucket: it applies only onto the entry it was
  computed from (equal to the text read, or no entry) and only if its version is newer,
  and it ``$inc``-s the stage totals by the difference in the same single-document
  write. A replay, or an older version arriving late, finds a version as new or newer
  and changes nothing; two changes racing on one bucket: the loser re-reads and
  retries. Won and lost opportunities keep an entry (contributing nothing), so a late
  older version cannot bring them back.
- ``board_totals``: one document per venue with a copy of each bucket's totals and
  the revision they were copied at (``b.<k>``: ``r``, and ``t`` as compact JSON text),
  written after each bucket update only if the copy is older. The board reads it and
  adds the buckets up. A crash between the two writes leaves the copy behind until the
  next change of that bucket or the redelivery of the opportunity's event (the event
  apply copies the bucket even when its entry is already current).

Who applies: the opportunities use cases, right after each write (so the board is right
when a request answers), and the pipeline's own subscription to its opportunity events
(it reads the opportunity as stored, so it needs nothing the events lack and repairs a
crash between the opportunity's write and the read model's). Rebuild (``python -m
pipeline rebuild-board``): see :mod:`pipeline.board.rebuild`.

FerretDB 1.24 and MongoDB both do these single-document conditional writes atomically
(the local build serialises write commands, see the README); keys are opportunity and
stage ids, escaped so that a ``.`` or a leading ``$`` could never reach a field name.
Entries and copies are text, not sub-documents, because FerretDB 1.24 decodes nested
documents slowly (measured: the same 64 copies read 6 times faster as text).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from bson import Int64
from pymongo import DESCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from gala.aggregates import READ_FIELDS
from gala.identity import venue_scoped
from gala.store import Document, Index, Store
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
from pipeline.opportunities.domain import Opportunity
from pipeline.opportunities.repository import COLLECTION, from_document

BUCKETS_COLLECTION = "board_buckets"
TOTALS_COLLECTION = "board_totals"
CARD_SORT: Sequence[tuple[str, int]] = [("updatedAt", DESCENDING), ("_id", DESCENDING)]
INDEXES: Sequence[Index] = (Index(BUCKETS_COLLECTION, [("venueId", 1), ("_id", 1)]),)
APPLY_ATTEMPTS = 50
"""Retries of one conditional bucket update that lost races (each loser re-reads)."""


class BoardModelBusy(RuntimeError):
    """A bucket kept changing under one update (it is retried by the caller's path)."""


def open_in(venue_id: str) -> Document:
    return {"venueId": venue_id, "outcome": "OPEN"}


def key(value: str) -> str:
    """An id as a field name: ``%``, ``.`` and ``$`` escaped (reversible)."""
    return value.replace("%", "%25").replace(".", "%2E").replace("$", "%24")


def unkey(value: str) -> str:
    return value.replace("%24", "$").replace("%2E", ".").replace("%25", "%")


def bucket_id(venue_id: str, bucket: int) -> str:
    return f"{venue_id}|{bucket:03d}"


def contribution_of_document(d: Mapping[str, Any]) -> Contribution:
    """An opportunity's contribution from its stored document."""
    version = int(d["version"])
    if d.get("outcome") != "OPEN":
        return Contribution(version, None, 0)
    return Contribution(version, d["stageId"], int(d.get("valueMinor") or 0))


def _entry(c: Contribution) -> str:
    return json.dumps([c.version, c.stage_id, c.value_minor], separators=(",", ":"))


def _from_entry(e: str) -> Contribution:
    version, stage_id, value_minor = json.loads(e)
    return Contribution(int(version), stage_id, int(value_minor))


def _totals(t: Mapping[str, Any] | None) -> dict[str, StageTotals]:
    return {
        unkey(stage): StageTotals(int(v.get("n") or 0), int(v.get("m") or 0))
        for stage, v in (t or {}).items()
    }


def _totals_doc(totals: Mapping[str, StageTotals]) -> Document:
    return {
        key(stage): {"n": Int64(s.count), "m": Int64(s.total_minor)} for stage, s in totals.items()
    }


def _copy_text(totals: Mapping[str, StageTotals]) -> str:
    data = {stage: [s.count, s.total_minor] for stage, s in sorted(totals.items())}
    return json.dumps(data, separators=(",", ":"))


def _from_copy_text(text: str | None) -> dict[str, StageTotals]:
    return {
        stage: StageTotals(int(n), int(m)) for stage, (n, m) in json.loads(text or "{}").items()
    }


class BoardRepository:
    def __init__(self, store: Store, buckets: int = BUCKETS) -> None:
        self._store = store
        self._buckets = buckets

    # --- the board's reads ----------------------------------------------------------

    async def totals(self, venue_id: str) -> dict[str, StageTotals]:
        """Per stage, the open opportunities' count and sum: one document's read."""
        d = await self._store[TOTALS_COLLECTION].find_one(venue_scoped(venue_id, {"_id": venue_id}))
        if d is None:
            return {}
        return add_up(_from_copy_text(part.get("t")) for part in (d.get("b") or {}).values())

    async def cards(self, venue_id: str, stage_id: str, limit: int) -> list[Opportunity]:
        if limit <= 0:
            return []  # a find's limit(0) means no limit
        cursor = (
            self._store[COLLECTION]
            .find(_cards(venue_id, stage_id), READ_FIELDS)
            .sort(list(CARD_SORT))
            .limit(limit)
        )
        return [from_document(d) async for d in cursor]

    async def plans(self, venue_id: str, stage_id: str, limit: int) -> list[Document]:
        """The store's plans for the board's queries (tests prove they use an index)."""
        db = self._store.db
        totals = {
            "find": TOTALS_COLLECTION,
            "filter": venue_scoped(venue_id, {"_id": venue_id}),
            "limit": 1,
        }
        find = {
            "find": COLLECTION,
            "filter": _cards(venue_id, stage_id),
            "sort": dict(CARD_SORT),
            "limit": limit,
        }
        return [await db.command("explain", command) for command in (totals, find)]

    # --- keeping the read model ----------------------------------------------------------

    async def apply(self, venue_id: str, opportunity_id: str, new: Contribution) -> bool:
        """Put ``new`` in place of the opportunity's current contribution if it is newer
        (``True`` if it was); copy the bucket's totals to the venue's either way."""
        bucket = bucket_of(opportunity_id, self._buckets)
        doc_id, entry = bucket_id(venue_id, bucket), key(opportunity_id)
        buckets = self._store[BUCKETS_COLLECTION]
        for _ in range(APPLY_ATTEMPTS):
            found = await buckets.find_one(
                {"_id": doc_id, "venueId": venue_id}, {f"e.{entry}": 1, "r": 1}
            )
            stored = ((found or {}).get("e") or {}).get(entry)
            old = None if stored is None else _from_entry(stored)
            if not supersedes(new, old):
                if found is not None:
                    await self.publish(venue_id, bucket)
                return False
            guard: Document = {"_id": doc_id, "venueId": venue_id}
            if old is None:
                guard[f"e.{entry}"] = {"$exists": False}
            else:
                guard[f"e.{entry}"] = stored
            inc: Document = {"r": 1}
            for stage, change in deltas(old, new).items():
                inc[f"t.{key(stage)}.n"] = Int64(change.count)
                inc[f"t.{key(stage)}.m"] = Int64(change.total_minor)
            try:
                after = await buckets.find_one_and_update(
                    guard,
                    {"$set": {f"e.{entry}": _entry(new)}, "$inc": inc},
                    upsert=old is None,
                    return_document=ReturnDocument.AFTER,
                )
            except DuplicateKeyError:
                continue  # the bucket exists now, or the entry changed: re-read
            if after is None:
                continue  # the entry changed since it was read
            await self._copy(venue_id, bucket, int(after["r"]), _totals(after.get("t")))
            return True
        raise BoardModelBusy(f"the board bucket {doc_id} kept changing")

    async def publish(self, venue_id: str, bucket: int) -> None:
        """Copy one bucket's current totals to the venue's totals (if newer there)."""
        found = await self._store[BUCKETS_COLLECTION].find_one(
            {"_id": bucket_id(venue_id, bucket), "venueId": venue_id}, {"e": 0}
        )
        if found is not None:
            await self._copy(venue_id, bucket, int(found["r"]), _totals(found.get("t")))

    async def _copy(
        self, venue_id: str, bucket: int, revision: int, totals: Mapping[str, StageTotals]
    ) -> None:
        field = f"b.{bucket:03d}"
        guard = {
            "_id": venue_id,
            "venueId": venue_id,
            "$or": [{f"{field}.r": {"$lt": revision}}, {field: {"$exists": False}}],
        }
        update = {"$set": {field: {"r": revision, "t": _copy_text(totals)}}}
        collection = self._store[TOTALS_COLLECTION]
        try:
            await collection.update_one(guard, update, upsert=True)
        except DuplicateKeyError:
            # the venue's document exists (made meanwhile, or holds a newer copy)
            await collection.update_one(guard, update)

    # --- for the rebuild -----------------------------------------------------------------

    async def venues(self) -> list[str]:
        """Every venue that has opportunities."""
        found = await self._store[COLLECTION].distinct("venueId")
        return sorted(v for v in found if isinstance(v, str))

    async def contributions(self, venue_id: str) -> AsyncIterator[tuple[str, Contribution]]:
        """Every opportunity of the venue with its contribution, as stored now."""
        cursor = self._store[COLLECTION].find(
            venue_scoped(venue_id), {"version": 1, "outcome": 1, "stageId": 1, "valueMinor": 1}
        )
        async for d in cursor:
            yield d["_id"], contribution_of_document(d)

    async def contribution(self, venue_id: str, opportunity_id: str) -> Contribution | None:
        """One opportunity's contribution as stored now (None: no such opportunity)."""
        d = await self._store[COLLECTION].find_one(
            venue_scoped(venue_id, {"_id": opportunity_id}),
            {"version": 1, "outcome": 1, "stageId": 1, "valueMinor": 1},
        )
        return None if d is None else contribution_of_document(d)

    async def rebuild_bucket(
        self, venue_id: str, bucket: int, computed: Mapping[str, Contribution]
    ) -> None:
        """Merge ``computed`` (opportunity id -> contribution, as read from the
        opportunities) into the bucket, keeping the newer version of each entry, and set
        its totals to the recomputation of the merged entries: a compare-and-set on the
        bucket's revision, re-merged and retried when a concurrent change lands first.
        Then copy the totals to the venue's (replacing a copy that is ahead of the
        bucket: the bucket was deleted)."""
        doc_id = bucket_id(venue_id, bucket)
        buckets = self._store[BUCKETS_COLLECTION]
        await buckets.update_one(
            {"_id": doc_id, "venueId": venue_id},
            {"$setOnInsert": {"r": 0, "e": {}, "t": {}}},
            upsert=True,
        )
        for _ in range(APPLY_ATTEMPTS):
            found = await buckets.find_one({"_id": doc_id, "venueId": venue_id})
            assert found is not None
            revision = int(found.get("r") or 0)
            merged = {unkey(k): _from_entry(e) for k, e in (found.get("e") or {}).items()}
            for opportunity_id, contribution in computed.items():
                if supersedes(contribution, merged.get(opportunity_id)):
                    merged[opportunity_id] = contribution
            totals = recompute(merged.values())
            entries = {key(i): _entry(c) for i, c in merged.items()}
            after = await buckets.find_one_and_update(
                {"_id": doc_id, "venueId": venue_id, "r": revision},
                {"$set": {"e": entries, "t": _totals_doc(totals)}, "$inc": {"r": 1}},
                return_document=ReturnDocument.AFTER,
            )
            if after is not None:
                await self._replace_if_ahead(venue_id, bucket, revision + 1, totals)
                await self._copy(venue_id, bucket, revision + 1, totals)
                return
        raise BoardModelBusy(f"the board bucket {doc_id} kept changing")

    async def _replace_if_ahead(
        self, venue_id: str, bucket: int, revision: int, totals: Mapping[str, StageTotals]
    ) -> None:
        field = f"b.{bucket:03d}"
        await self._store[TOTALS_COLLECTION].update_one(
            {"_id": venue_id, "venueId": venue_id, f"{field}.r": {"$gt": revision}},
            {"$set": {field: {"r": revision, "t": _copy_text(totals)}}},
        )

    @property
    def buckets(self) -> int:
        return self._buckets


def _cards(venue_id: str, stage_id: str) -> Document:
    return {**open_in(venue_id), "stageId": stage_id}
