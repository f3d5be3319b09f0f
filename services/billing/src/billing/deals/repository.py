"""The only module that speaks to the store about deals (``deals``, ``_id`` = the
opportunity id)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from billing.deals.domain import Deal
from gala.contracts.pipeline import OpportunityOutcome
from gala.identity import venue_scoped
from gala.projections import keep_newest
from gala.store import Document, Index, Store
from gala.values import as_utc

COLLECTION = "deals"
PROJECT_AS_OF = "projectAsOf"
"""The event time of the project state kept (the opportunity's is ``asOf``)."""
INDEXES: Sequence[Index] = (
    Index(COLLECTION, [("venueId", ASCENDING), ("clientIds", ASCENDING)]),
    Index(COLLECTION, [("projectId", ASCENDING)]),
)


def _deal(d: Mapping[str, Any]) -> Deal:
    return Deal(
        opportunity_id=d["_id"],
        venue_id=d["venueId"],
        outcome=OpportunityOutcome(d.get("outcome") or OpportunityOutcome.OPEN),
        currency=d.get("currency"),
        name=d.get("name"),
        contact_id=d.get("contactId"),
        event_date=as_utc(d.get("eventDate")),
        project_id=d.get("projectId"),
        client_ids=list(d.get("clientIds") or []),
    )


class DealRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def _deals(self) -> AsyncCollection[Document]:
        return self._store[COLLECTION]

    async def get(self, venue_id: str, opportunity_id: str) -> Deal | None:
        d = await self._deals.find_one(venue_scoped(venue_id, {"_id": opportunity_id}))
        return _deal(d) if d is not None else None

    async def keep_opportunity(self, deal: Deal, as_of: datetime) -> bool:
        """Keep the opportunity's state unless a newer one is known."""
        state: Document = {
            "outcome": deal.outcome.value,
            "currency": deal.currency,
            "name": deal.name,
            "contactId": deal.contact_id,
            "eventDate": deal.event_date,
        }
        return await keep_newest(self._deals, deal.opportunity_id, deal.venue_id, state, as_of)

    async def keep_project(
        self,
        venue_id: str,
        opportunity_id: str,
        project_id: str,
        client_ids: list[str],
        as_of: datetime,
    ) -> bool:
        """The opportunity's project and its client users as of ``as_of``, unless a newer
        project event is known (kept apart from the opportunity's own time, as
        ``gala.projections.keep_newest`` keeps one copy); ``True`` if it was written."""
        query: Document = {
            "_id": opportunity_id,
            "venueId": venue_id,
            "$or": [{PROJECT_AS_OF: {"$lte": as_of}}, {PROJECT_AS_OF: None}],
        }
        state: Document = {
            "projectId": project_id,
            "venueId": venue_id,
            "clientIds": list(dict.fromkeys(client_ids)),
            PROJECT_AS_OF: as_of,
        }
        try:
            result = await self._deals.update_one(query, {"$set": state}, upsert=True)
        except DuplicateKeyError:
            return False  # it exists, and knows a newer project event
        return result.matched_count == 1 or result.upserted_id is not None

    async def of_client(self, venue_id: str, user_id: str) -> tuple[list[str], list[str]]:
        """The opportunities, and their projects, a CLIENT user belongs to."""
        cursor = self._deals.find(
            venue_scoped(venue_id, {"clientIds": user_id}), {"_id": 1, "projectId": 1}
        )
        found = [d async for d in cursor]
        return [d["_id"] for d in found], [d["projectId"] for d in found if d.get("projectId")]

    async def by_project(self, venue_id: str, project_id: str) -> Deal | None:
        d = await self._deals.find_one(venue_scoped(venue_id, {"projectId": project_id}))
        return _deal(d) if d is not None else None

    async def opportunities_of_client(self, venue_id: str, user_id: str) -> list[str]:
        cursor = self._deals.find(venue_scoped(venue_id, {"clientIds": user_id}), {"_id": 1})
        return [d["_id"] async for d in cursor]
