"""The only module that speaks to the store about deliveries.

Deliveries live in ``webhook_deliveries``, one document each (its attempts inside).
Workers claim a due one with one atomic update that moves its next-attempt time past a
lease and stamps a claim token: it is that worker's until then, and if the worker dies
another one takes it over when the lease runs out. An attempt's outcome is written only
under the claim it was made with (a worker whose lease was taken over writes nothing).
Every listing and claim reads through an index (see ``INDEXES``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from gala.identity import venue_scoped
from gala.store import Document, Index, PageRequest, Store, explain_page, find_page
from gala.values import as_utc, required_utc
from partners.deliveries.domain import Attempt, Delivery, DeliveryStatus

COLLECTION = "webhook_deliveries"
CLAIM = "claim"
LOG_SORT = [("createdAt", DESCENDING), ("_id", DESCENDING)]
INDEXES: Sequence[Index] = (
    Index(COLLECTION, [("status", ASCENDING), ("nextAttemptAt", ASCENDING)], name="due"),
    # the log's page for each filter: the venue and endpoint, the filter, then its order
    # (newest first) and the id find_page adds as the tie-break
    *(
        Index(
            COLLECTION,
            [
                ("venueId", ASCENDING),
                ("endpointId", ASCENDING),
                *((name, ASCENDING) for name in filtered),
                ("createdAt", DESCENDING),
                ("_id", DESCENDING),
            ],
            name="_".join(("log_page", *filtered)),
        )
        for filtered in ((), ("status",), ("eventType",))
    ),
)


def _attempt_document(a: Attempt) -> Document:
    return {
        "at": a.at,
        "durationMs": a.duration_ms,
        "statusCode": a.status_code,
        "response": a.response,
        "error": a.error,
        "retryAfterSeconds": a.retry_after.total_seconds() if a.retry_after else None,
    }


def _attempt(d: Mapping[str, Any]) -> Attempt:
    wait = d.get("retryAfterSeconds")
    return Attempt(
        at=required_utc(d["at"]),
        duration_ms=int(d["durationMs"]),
        status_code=d.get("statusCode"),
        response=d.get("response") or "",
        error=d.get("error"),
        retry_after=timedelta(seconds=wait) if wait is not None else None,
    )


def state_of(d: Delivery) -> Document:
    """What an attempt changes."""
    return {
        "status": d.status.value,
        "nextAttemptAt": d.next_attempt_at,
        "failures": d.failures,
        "attempts": [_attempt_document(a) for a in d.attempts],
        "attemptCount": d.attempt_count,
        "succeededAt": d.succeeded_at,
        "failedReason": d.failed_reason,
    }


def to_document(d: Delivery) -> Document:
    return {
        "_id": d.id,
        "venueId": d.venue_id,
        "endpointId": d.endpoint_id,
        "eventId": d.event_id,
        "eventType": d.event_type,
        "body": d.body,
        "createdAt": d.created_at,
        **state_of(d),
    }


def from_document(d: Mapping[str, Any]) -> Delivery:
    return Delivery(
        id=d["_id"],
        venue_id=d["venueId"],
        endpoint_id=d["endpointId"],
        event_id=d["eventId"],
        event_type=d["eventType"],
        body=d["body"],
        created_at=required_utc(d["createdAt"]),
        status=DeliveryStatus(d["status"]),
        next_attempt_at=as_utc(d.get("nextAttemptAt")),
        failures=int(d.get("failures", 0)),
        attempts=[_attempt(a) for a in d.get("attempts", [])],
        attempt_count=int(d.get("attemptCount", 0)),
        succeeded_at=as_utc(d.get("succeededAt")),
        failed_reason=d.get("failedReason"),
    )


def _log_query(
    venue_id: str, endpoint_id: str, status: DeliveryStatus | None, event_type: str | None
) -> Document:
    query: Document = {"endpointId": endpoint_id}
    if status is not None:
        query["status"] = status.value
    if event_type is not None:
        query["eventType"] = event_type
    return venue_scoped(venue_id, query)


class DeliveryRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def collection(self) -> AsyncCollection[Document]:
        return self._store[COLLECTION]

    async def add(self, delivery: Delivery) -> bool:
        """Store a new delivery; ``False`` if it exists (the same event again)."""
        document = to_document(delivery)
        try:
            result = await self.collection.update_one(
                {"_id": delivery.id}, {"$setOnInsert": document}, upsert=True
            )
        except DuplicateKeyError:
            return False  # a concurrent copy of the same event made it first
        return result.upserted_id is not None

    async def get(self, venue_id: str, endpoint_id: str, delivery_id: str) -> Delivery | None:
        query = venue_scoped(venue_id, {"_id": delivery_id, "endpointId": endpoint_id})
        document = await self.collection.find_one(query)
        return from_document(document) if document is not None else None

    async def page(
        self,
        venue_id: str,
        endpoint_id: str,
        *,
        status: DeliveryStatus | None,
        event_type: str | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[Delivery], str | None]:
        """One page of an endpoint's delivery log, newest first."""
        query = _log_query(venue_id, endpoint_id, status, event_type)
        page = await find_page(self.collection, query, PageRequest(LOG_SORT, limit, cursor))
        return [from_document(d) for d in page.items], page.next_cursor

    async def explain_page(
        self,
        venue_id: str,
        endpoint_id: str,
        status: DeliveryStatus | None = None,
        event_type: str | None = None,
    ) -> Document:
        query = _log_query(venue_id, endpoint_id, status, event_type)
        return await explain_page(self.collection, query, PageRequest(LOG_SORT, 50, None))

    async def due(self, now: datetime, limit: int, busy: Sequence[str] = ()) -> list[Document]:
        """Up to ``limit`` due deliveries (``_id`` and ``endpointId``), the earliest first,
        of endpoints not in ``busy``: candidates to claim (through ``due``)."""
        query: Document = {"status": DeliveryStatus.PENDING.value, "nextAttemptAt": {"$lte": now}}
        if busy:
            query["endpointId"] = {"$nin": list(busy)}
        found = self.collection.find(query, {"_id": 1, "endpointId": 1})
        return await found.sort([("nextAttemptAt", ASCENDING)]).limit(limit).to_list(length=limit)

    async def claim(
        self, delivery_id: str, now: datetime, lease: timedelta, token: str
    ) -> Delivery | None:
        """Take a due delivery for ``lease`` (``None``: another worker took it first): its
        next-attempt time moves past the lease, and it carries this claim's ``token``."""
        document = await self.collection.find_one_and_update(
            {
                "_id": delivery_id,
                "status": DeliveryStatus.PENDING.value,
                "nextAttemptAt": {"$lte": now},
            },
            {"$set": {"nextAttemptAt": now + lease, CLAIM: token}},
            return_document=ReturnDocument.AFTER,
        )
        return from_document(document) if document is not None else None

    async def explain_claim(self, now: datetime) -> Document:
        command = {
            "find": COLLECTION,
            "filter": {"status": DeliveryStatus.PENDING.value, "nextAttemptAt": {"$lte": now}},
            "sort": {"nextAttemptAt": 1},
            "limit": 1,
        }
        explained: Document = await self._store.db.command("explain", command)
        return explained

    async def settle(self, delivery: Delivery, token: str) -> bool:
        """Write an attempt's outcome, if the claim is still this worker's."""
        result = await self.collection.update_one(
            {"_id": delivery.id, CLAIM: token},
            {"$set": state_of(delivery), "$unset": {CLAIM: ""}},
        )
        return result.matched_count == 1

    async def resend(
        self, venue_id: str, endpoint_id: str, delivery_id: str, now: datetime
    ) -> bool:
        result = await self.collection.update_one(
            venue_scoped(venue_id, {"_id": delivery_id, "endpointId": endpoint_id}),
            {
                "$set": {
                    "status": DeliveryStatus.PENDING.value,
                    "nextAttemptAt": now,
                    "failures": 0,
                    "failedReason": None,
                },
                "$unset": {CLAIM: ""},
            },
        )
        return result.matched_count == 1

    async def resend_failed_since(
        self, venue_id: str, endpoint_id: str, since: datetime, now: datetime
    ) -> int:
        """Every failed delivery of the endpoint created since ``since``, again now."""
        query = _log_query(venue_id, endpoint_id, DeliveryStatus.FAILED, None)
        query["createdAt"] = {"$gte": since}
        result = await self.collection.update_many(
            query,
            {
                "$set": {
                    "status": DeliveryStatus.PENDING.value,
                    "nextAttemptAt": now,
                    "failures": 0,
                    "failedReason": None,
                },
                "$unset": {CLAIM: ""},
            },
        )
        return int(result.modified_count)

    async def fail_pending(self, venue_id: str, endpoint_id: str, reason: str) -> int:
        """The endpoint was disabled: its waiting deliveries fail (a recovery resends)."""
        query = _log_query(venue_id, endpoint_id, DeliveryStatus.PENDING, None)
        result = await self.collection.update_many(
            query,
            {
                "$set": {
                    "status": DeliveryStatus.FAILED.value,
                    "nextAttemptAt": None,
                    "failedReason": reason,
                }
            },
        )
        return int(result.modified_count)

    async def forget(self, delivery: Delivery, token: str) -> None:
        """Drop a claimed delivery whose endpoint is gone."""
        await self.collection.delete_one({"_id": delivery.id, CLAIM: token})

    async def delete_of(self, venue_id: str, endpoint_id: str) -> int:
        result = await self.collection.delete_many(
            venue_scoped(venue_id, {"endpointId": endpoint_id})
        )
        return int(result.deleted_count)
