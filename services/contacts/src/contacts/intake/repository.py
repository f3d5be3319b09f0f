"""The only module that speaks to the store about intake.

- ``intake_keys``: one document per venue (``_id`` is the venue) holding its public
  website key; a unique index on ``key`` makes a key name one venue only, and the
  look-up of a key reads this document, so a rotated key stops working at once.
- ``intake_meta_pages``: one document per Facebook/Instagram page (``_id`` is the page
  id) naming the venue that receives its leads and holding the page access token that
  venue proved control with (``accessToken``: read by the lead worker, never answered);
  ``_id`` makes a page one venue's only. A takeover replaces the holder's document
  only if it is still the one that was checked (same venue, same token).
- ``intake_rate_windows``: a counter per (venue, client address, minute), incremented
  with one atomic upsert, so the limit holds across replicas; a window that ended is
  deleted by the first submission of a later window (the store has no TTL indexes).
- ``intake_meta_leads``: one document per Meta lead (``_id`` is the leadgen id, so a
  redelivered webhook adds nothing), with its state; workers claim a due lead by
  pushing its ``nextAttemptAt`` past a lease and stamping a claim token, so two
  replicas never work on one lead at once and a crashed worker's claim runs out.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from contacts.intake.domain import (
    LeadgenNotice,
    LeadState,
    PageGrant,
    PageMapping,
    PageTaken,
    RateWindow,
)
from gala.contracts.contacts import LeadSource
from gala.store import Document, Index, Store
from gala.values import required_utc

KEYS = "intake_keys"
PAGES = "intake_meta_pages"
RATE_WINDOWS = "intake_rate_windows"
META_LEADS = "intake_meta_leads"

INDEXES: Sequence[Index] = (
    Index(KEYS, [("key", ASCENDING)], unique=True, name="intake_keys_key"),
    Index(PAGES, [("venueId", ASCENDING)], name="intake_pages_venue"),
    Index(RATE_WINDOWS, [("endsAt", ASCENDING)], name="intake_rate_ends"),
    Index(
        META_LEADS,
        [("state", ASCENDING), ("nextAttemptAt", ASCENDING)],
        name="intake_meta_leads_due",
    ),
)

_WRITE_ATTEMPTS = 3


@dataclass(frozen=True)
class IntakeKey:
    venue_id: str
    key: str
    created_at: datetime
    rotated_at: datetime | None

    @classmethod
    def of(cls, document: Mapping[str, Any]) -> IntakeKey:
        rotated = document.get("rotatedAt")
        return cls(
            venue_id=document["_id"],
            key=document["key"],
            created_at=required_utc(document["createdAt"]),
            rotated_at=required_utc(rotated) if rotated is not None else None,
        )


class IntakeRepository:
    """Venue keys, page mappings and submission counters."""

    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def _keys(self) -> AsyncCollection[Document]:
        return self._store[KEYS]

    @property
    def _pages(self) -> AsyncCollection[Document]:
        return self._store[PAGES]

    @property
    def _windows(self) -> AsyncCollection[Document]:
        return self._store[RATE_WINDOWS]

    # --- keys -----------------------------------------------------------------------

    async def key_of(self, venue_id: str, new_key: str, now: datetime) -> IntakeKey:
        """The venue's key; ``new_key`` becomes it if the venue has none yet."""
        for _ in range(_WRITE_ATTEMPTS):
            document = await self._keys.find_one({"_id": venue_id})
            if document is not None:
                return IntakeKey.of(document)
            try:
                await self._keys.insert_one({"_id": venue_id, "key": new_key, "createdAt": now})
            except DuplicateKeyError:
                continue  # created meanwhile by another request: read it
        raise RuntimeError("the venue's intake key could not be read or created")

    async def rotate(self, venue_id: str, new_key: str, now: datetime) -> IntakeKey:
        """Replace the venue's key by ``new_key``: the old one stops working now."""
        for attempt in range(_WRITE_ATTEMPTS):
            try:
                document = await self._keys.find_one_and_update(
                    {"_id": venue_id},
                    {
                        "$set": {"key": new_key, "rotatedAt": now},
                        "$setOnInsert": {"createdAt": now},
                    },
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                )
            except DuplicateKeyError:
                if attempt + 1 == _WRITE_ATTEMPTS:
                    raise
                continue  # a concurrent first key: rotate that one
            assert document is not None
            return IntakeKey.of(document)
        raise AssertionError("unreachable")

    async def venue_of_key(self, key: str) -> str | None:
        document = await self._keys.find_one({"key": key}, {"_id": 1})
        return None if document is None else str(document["_id"])

    # --- submission counters -----------------------------------------------------------

    async def count_submission(
        self, venue_id: str, address: str, window: RateWindow, now: datetime
    ) -> int:
        """Count one submission in ``window``; answers the window's count including it."""
        document: Document | None = None
        for attempt in range(_WRITE_ATTEMPTS):
            try:
                document = await self._windows.find_one_and_update(
                    {"_id": f"{venue_id}|{address}|{window.index}"},
                    {
                        "$inc": {"count": 1},
                        "$setOnInsert": {
                            "venueId": venue_id,
                            "address": address,
                            "endsAt": window.ends_at,
                        },
                    },
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                )
                break
            except DuplicateKeyError:
                # two first submissions raced to insert the window: the loser increments
                if attempt + 1 == _WRITE_ATTEMPTS:
                    raise
        assert document is not None
        count = int(document["count"])
        if count == 1:
            # a window's first submission sweeps the ended ones (no TTL indexes here)
            await self._windows.delete_many({"endsAt": {"$lte": now}})
        return count

    # --- Meta pages ---------------------------------------------------------------------

    async def pages_of(self, venue_id: str) -> list[str]:
        documents = await self._pages.find({"venueId": venue_id}, {"_id": 1}).to_list()
        return sorted(str(document["_id"]) for document in documents)

    async def mappings(self, pages: Sequence[str]) -> dict[str, PageMapping]:
        """Who holds each of ``pages`` (those mapped at all), with their tokens."""
        if not pages:
            return {}
        documents = await self._pages.find({"_id": {"$in": list(pages)}}).to_list()
        return {
            str(document["_id"]): PageMapping(
                page_id=str(document["_id"]),
                venue_id=str(document["venueId"]),
                access_token=document.get("accessToken"),
            )
            for document in documents
        }

    async def map_pages(
        self,
        venue_id: str,
        grants: Sequence[PageGrant],
        takeovers: Mapping[str, PageMapping],
        now: datetime,
    ) -> None:
        """Make ``grants`` the venue's pages exactly, each with its token (a grant without
        one keeps the token the venue holds); ``takeovers`` are pages another venue holds
        that this one may take, as they were checked. :class:`PageTaken` changes nothing.

        Without multi-document transactions: should a page be taken in between (or a
        checked holder change), the pages this call added are removed again and the
        holders it replaced restored.
        """
        added: list[str] = []
        replaced: list[Document] = []
        try:
            for grant in grants:
                holder = takeovers.get(grant.page_id)
                if holder is not None:
                    replaced.append(await self._take_over(venue_id, grant, holder, now))
                elif await self._claim(venue_id, grant, now):
                    added.append(grant.page_id)
        except PageTaken:
            await self._undo(venue_id, added, replaced)
            raise
        for grant in grants:
            if grant.access_token is None or grant.page_id in added or grant.page_id in takeovers:
                continue
            await self._pages.update_one(
                {"_id": grant.page_id, "venueId": venue_id},
                {"$set": {"accessToken": grant.access_token, "tokenSetAt": now}},
            )
        pages = [grant.page_id for grant in grants]
        await self._pages.delete_many({"venueId": venue_id, "_id": {"$nin": pages}})

    async def _claim(self, venue_id: str, grant: PageGrant, now: datetime) -> bool:
        """Map a page no one held when checked; ``False`` when it is the venue's already."""
        for _ in range(_WRITE_ATTEMPTS):
            try:
                await self._pages.insert_one(
                    {
                        "_id": grant.page_id,
                        "venueId": venue_id,
                        "accessToken": grant.access_token,
                        "mappedAt": now,
                        "tokenSetAt": now,
                    }
                )
                return True
            except DuplicateKeyError:
                owner = await self._pages.find_one({"_id": grant.page_id}, {"venueId": 1})
                if owner is None:
                    continue  # released meanwhile: try again
                if owner["venueId"] == venue_id:
                    return False  # ours already
                raise PageTaken([grant.page_id]) from None
        raise PageTaken([grant.page_id])

    async def _take_over(
        self, venue_id: str, grant: PageGrant, holder: PageMapping, now: datetime
    ) -> Document:
        """Replace the holder's mapping, if it is still the one checked; answers it."""
        previous = await self._pages.find_one_and_replace(
            {
                "_id": grant.page_id,
                "venueId": holder.venue_id,
                "accessToken": holder.access_token,
            },
            {
                "venueId": venue_id,
                "accessToken": grant.access_token,
                "mappedAt": now,
                "tokenSetAt": now,
            },
            return_document=ReturnDocument.BEFORE,
        )
        if previous is None:
            raise PageTaken([grant.page_id])  # it changed since it was checked
        return previous

    async def _undo(
        self, venue_id: str, added: Sequence[str], replaced: Sequence[Document]
    ) -> None:
        if added:
            await self._pages.delete_many({"_id": {"$in": list(added)}, "venueId": venue_id})
        for previous in replaced:
            await self._pages.replace_one(
                {"_id": previous["_id"], "venueId": venue_id},
                {key: value for key, value in previous.items() if key != "_id"},
            )

    async def token_for(self, venue_id: str, candidates: Sequence[str]) -> str | None:
        """The venue's access token for the first of ``candidates`` it holds one for."""
        if not candidates:
            return None
        documents = await self._pages.find(
            {"_id": {"$in": list(candidates)}, "venueId": venue_id}
        ).to_list()
        tokens = {str(d["_id"]): d.get("accessToken") for d in documents}
        return next((tokens[page] for page in candidates if tokens.get(page)), None)

    async def venue_of_pages(self, candidates: Sequence[str]) -> tuple[str, str] | None:
        """The venue that mapped the first of ``candidates`` mapped at all, and that page."""
        if not candidates:
            return None
        documents = await self._pages.find({"_id": {"$in": list(candidates)}}).to_list()
        owners = {str(document["_id"]): str(document["venueId"]) for document in documents}
        for page in candidates:
            if page in owners:
                return owners[page], page
        return None


@dataclass(frozen=True)
class ClaimedLead:
    """A pending Meta lead this worker holds until its lease runs out."""

    leadgen_id: str
    venue_id: str
    source: LeadSource
    attempts: int
    claim: str
    page_candidates: tuple[str, ...] = ()
    """The ids a venue may have mapped for it: its page, then its entry's object."""


class MetaLeadRepository:
    """Meta leads from their webhook to their contact."""

    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def _leads(self) -> AsyncCollection[Document]:
        return self._store[META_LEADS]

    async def record(
        self, notice: LeadgenNotice, routed: tuple[str, str] | None, now: datetime
    ) -> bool:
        """Keep a lead the webhook announced; ``False`` if it is known already."""
        venue_id, page_id = routed if routed is not None else (None, None)
        try:
            await self._leads.insert_one(
                {
                    "_id": notice.leadgen_id,
                    "source": notice.source.value,
                    "pageId": notice.page_id,
                    "entryId": notice.entry_id,
                    "formId": notice.form_id,
                    "adId": notice.ad_id,
                    "createdTime": notice.created_time,
                    "venueId": venue_id,
                    "routedPageId": page_id,
                    "state": (LeadState.PENDING if routed else LeadState.UNROUTABLE).value,
                    "attempts": 0,
                    "nextAttemptAt": now,
                    "claim": None,
                    "lastError": None,
                    "contactId": None,
                    "receivedAt": now,
                    "updatedAt": now,
                }
            )
        except DuplicateKeyError:
            return False
        return True

    async def route_unroutable(self, venue_id: str, pages: Sequence[str], now: datetime) -> int:
        """Send the unroutable leads of ``pages`` (now the venue's) to the venue."""
        result = await self._leads.update_many(
            {
                "state": LeadState.UNROUTABLE.value,
                "$or": [{"pageId": {"$in": list(pages)}}, {"entryId": {"$in": list(pages)}}],
            },
            {
                "$set": {
                    "state": LeadState.PENDING.value,
                    "venueId": venue_id,
                    "attempts": 0,
                    "nextAttemptAt": now,
                    "updatedAt": now,
                }
            },
        )
        return result.modified_count

    async def claim(self, now: datetime, lease: timedelta) -> ClaimedLead | None:
        """Take the most overdue pending lead for ``lease`` (counting one more attempt)."""
        token = uuid.uuid4().hex
        document = await self._leads.find_one_and_update(
            {"state": LeadState.PENDING.value, "nextAttemptAt": {"$lte": now}},
            {
                "$set": {"claim": token, "nextAttemptAt": now + lease, "updatedAt": now},
                "$inc": {"attempts": 1},
            },
            sort=[("nextAttemptAt", ASCENDING)],
            return_document=ReturnDocument.AFTER,
        )
        if document is None:
            return None
        return ClaimedLead(
            leadgen_id=str(document["_id"]),
            venue_id=str(document["venueId"]),
            source=LeadSource(document["source"]),
            attempts=int(document["attempts"]),
            claim=token,
            page_candidates=tuple(
                dict.fromkeys(
                    str(document[key])
                    for key in ("pageId", "entryId")
                    if document.get(key) is not None
                )
            ),
        )

    async def _settle(self, lead: ClaimedLead, changes: Document) -> bool:
        """Apply ``changes`` if the claim still holds (``False``: it ran out, let go)."""
        result = await self._leads.update_one(
            {"_id": lead.leadgen_id, "claim": lead.claim, "state": LeadState.PENDING.value},
            {"$set": {**changes, "claim": None}},
        )
        return result.matched_count == 1

    async def complete(self, lead: ClaimedLead, contact_id: str, now: datetime) -> bool:
        return await self._settle(
            lead,
            {
                "state": LeadState.DONE.value,
                "contactId": contact_id,
                "lastError": None,
                "updatedAt": now,
            },
        )

    async def retry_at(self, lead: ClaimedLead, at: datetime, error: str, now: datetime) -> bool:
        return await self._settle(
            lead, {"nextAttemptAt": at, "lastError": error[:1000], "updatedAt": now}
        )

    async def fail(self, lead: ClaimedLead, error: str, now: datetime) -> bool:
        return await self._settle(
            lead, {"state": LeadState.FAILED.value, "lastError": error[:1000], "updatedAt": now}
        )

    async def park_unroutable(self, lead: ClaimedLead, error: str, now: datetime) -> bool:
        """No token reads the lead: it waits, routed to no one, until its page is mapped."""
        return await self._settle(
            lead,
            {
                "state": LeadState.UNROUTABLE.value,
                "venueId": None,
                "lastError": error[:1000],
                "updatedAt": now,
            },
        )

    async def move_pending(self, page: str, from_venue: str, to_venue: str, now: datetime) -> int:
        """The pending leads of a page taken over go to the venue that took it."""
        result = await self._leads.update_many(
            {
                "state": LeadState.PENDING.value,
                "venueId": from_venue,
                "$or": [{"pageId": page}, {"entryId": page}],
            },
            {"$set": {"venueId": to_venue, "updatedAt": now}},
        )
        return result.modified_count

    async def get(self, leadgen_id: str) -> Document | None:
        return await self._leads.find_one({"_id": leadgen_id})
