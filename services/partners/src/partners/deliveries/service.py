"""Use cases of deliveries: the fan-out of each event to the venue's endpoints, the
test ping, the delivery log, redelivery and recovery."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime

from gala.events.envelope import Envelope
from gala.identity import Principal, ensure_role
from gala.store import Store, utc_now
from gala.values import utc_millis
from partners.deliveries.domain import (
    Delivery,
    DeliveryNotFound,
    DeliveryStatus,
    EndpointDisabledError,
    structured_cloudevent,
)
from partners.deliveries.engine import wake
from partners.deliveries.repository import DeliveryRepository
from partners.webhooks.domain import PING_TYPE, Endpoint, EndpointNotFound
from partners.webhooks.repository import EndpointRepository
from partners.webhooks.service import MANAGERS

Clock = Callable[[], datetime]
SOURCE = "/gala/partners"


def body_of(envelope: Envelope) -> str:
    return structured_cloudevent(
        event_id=envelope.id,
        event_type=envelope.type,
        source=envelope.source,
        subject=envelope.subject,
        time=envelope.time,
        data=envelope.data,
        datacontenttype=envelope.datacontenttype,
        extensions={
            "venueid": envelope.venueid,
            "traceparent": envelope.traceparent,
            "correlationid": envelope.correlationid,
            "causationid": envelope.causationid,
        },
    )


class DeliveryService:
    def __init__(
        self,
        store: Store,
        deliveries: DeliveryRepository,
        endpoints: EndpointRepository,
        clock: Clock = utc_now,
    ) -> None:
        self._store = store
        self._deliveries = deliveries
        self._endpoints = endpoints
        self._clock = clock

    async def fan_out(self, envelope: Envelope) -> int:
        """One delivery per enabled endpoint of the event's venue that wants its type
        (the same event again makes none); answers how many were new."""
        if not envelope.venueid:
            return 0
        wanting = [
            e for e in await self._endpoints.enabled_of(envelope.venueid) if e.wants(envelope.type)
        ]
        if not wanting:
            return 0
        body = body_of(envelope)
        now = self._clock()
        made = 0
        for endpoint in wanting:
            delivery = Delivery.create(
                envelope.venueid, endpoint.id, envelope.id, envelope.type, body, now
            )
            made += await self._deliveries.add(delivery)
        if made:
            wake(self._store)
        return made

    async def _endpoint(self, principal: Principal, endpoint_id: str) -> Endpoint:
        ensure_role(principal, MANAGERS, "use webhook deliveries")
        endpoint = await self._endpoints.get(principal.venue_id, endpoint_id)
        if endpoint is None:
            raise EndpointNotFound()
        return endpoint

    async def ping(self, principal: Principal, endpoint_id: str) -> Delivery:
        """A ``gala.webhook.ping.v1`` event to this endpoint alone, the way events go."""
        endpoint = await self._endpoint(principal, endpoint_id)
        if not endpoint.enabled:
            raise EndpointDisabledError()
        now = self._clock()
        event_id = str(uuid.uuid4())
        data = {"endpointId": endpoint.id, "venueId": endpoint.venue_id, "message": "ping"}
        envelope = Envelope(
            id=event_id,
            type=PING_TYPE,
            source=SOURCE,
            subject=endpoint.id,
            time=now,
            data=json.dumps(data).encode(),
            venueid=endpoint.venue_id,
        )
        delivery = Delivery.create(
            endpoint.venue_id, endpoint.id, event_id, PING_TYPE, body_of(envelope), now
        )
        await self._deliveries.add(delivery)
        wake(self._store)
        return delivery

    async def log(
        self,
        principal: Principal,
        endpoint_id: str,
        *,
        status: DeliveryStatus | None,
        event_type: str | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[Delivery], str | None]:
        await self._endpoint(principal, endpoint_id)
        return await self._deliveries.page(
            principal.venue_id,
            endpoint_id,
            status=status,
            event_type=event_type,
            limit=limit,
            cursor=cursor,
        )

    async def get(self, principal: Principal, endpoint_id: str, delivery_id: str) -> Delivery:
        await self._endpoint(principal, endpoint_id)
        delivery = await self._deliveries.get(principal.venue_id, endpoint_id, delivery_id)
        if delivery is None:
            raise DeliveryNotFound()
        return delivery

    async def redeliver(self, principal: Principal, endpoint_id: str, delivery_id: str) -> Delivery:
        """Send it again now (whatever became of it), the schedule started afresh."""
        endpoint = await self._endpoint(principal, endpoint_id)
        if not endpoint.enabled:
            raise EndpointDisabledError()
        if not await self._deliveries.resend(
            principal.venue_id, endpoint_id, delivery_id, self._clock()
        ):
            raise DeliveryNotFound()
        wake(self._store)
        return await self.get(principal, endpoint_id, delivery_id)

    async def recover(self, principal: Principal, endpoint_id: str, since: datetime) -> int:
        """Every failed delivery made since ``since``, sent again now; how many."""
        endpoint = await self._endpoint(principal, endpoint_id)
        if not endpoint.enabled:
            raise EndpointDisabledError()
        count = await self._deliveries.resend_failed_since(
            principal.venue_id, endpoint_id, utc_millis(since), self._clock()
        )
        if count:
            wake(self._store)
        return count
