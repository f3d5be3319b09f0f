"""Use cases of webhook endpoints: a venue's ADMIN (session) or PARTNER (API key) keeps
them; nobody else of the venue may."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from gala.concurrency import save_attempts
from gala.events.model import Event
from gala.identity import Principal, Role, ensure_role
from gala.store import utc_now
from partners.deliveries.repository import DeliveryRepository
from partners.published import events_of_other_services
from partners.webhooks.domain import (
    DisabledReason,
    Endpoint,
    EndpointChangedConcurrently,
    EndpointNotFound,
    UrlPolicy,
    check_filters,
    check_url,
)
from partners.webhooks.repository import EndpointRepository

Clock = Callable[[], datetime]
MANAGERS: frozenset[Role] = frozenset({Role.ADMIN, Role.PARTNER})


def deliverable_events() -> list[type[Event]]:
    """Every event webhooks can carry: those of the other services."""
    return events_of_other_services()


def deliverable_types() -> list[str]:
    return [event.TYPE for event in deliverable_events()]


class EndpointService:
    def __init__(
        self,
        endpoints: EndpointRepository,
        deliveries: DeliveryRepository,
        policy: UrlPolicy,
        secret_overlap: timedelta,
        known_types: Sequence[str] | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self._endpoints = endpoints
        self._deliveries = deliveries
        self._policy = policy
        self._overlap = secret_overlap
        self._known = list(known_types) if known_types is not None else deliverable_types()
        self._clock = clock

    async def create(
        self, principal: Principal, url: str, event_types: list[str], description: str
    ) -> tuple[Endpoint, str]:
        """A new endpoint, and its secret (shown this once)."""
        ensure_role(principal, MANAGERS, "add webhook endpoints")
        check_url(url, self._policy)
        filters = check_filters(event_types, self._known)
        endpoint = Endpoint.create(
            str(uuid.uuid4()), principal.venue_id, url, filters, description, self._clock()
        )
        await self._endpoints.insert(endpoint)
        return endpoint, endpoint.secrets[0].value

    async def page(
        self, principal: Principal, limit: int, cursor: str | None
    ) -> tuple[list[Endpoint], str | None]:
        ensure_role(principal, MANAGERS, "see webhook endpoints")
        return await self._endpoints.page(principal.venue_id, limit, cursor)

    async def get(self, principal: Principal, endpoint_id: str) -> Endpoint:
        ensure_role(principal, MANAGERS, "see webhook endpoints")
        endpoint = await self._endpoints.get(principal.venue_id, endpoint_id)
        if endpoint is None:
            raise EndpointNotFound()
        return endpoint

    async def _change(
        self, principal: Principal, endpoint_id: str, change: Callable[[Endpoint], object]
    ) -> Endpoint:
        ensure_role(principal, MANAGERS, "change webhook endpoints")
        async for _ in save_attempts():
            endpoint = await self.get(principal, endpoint_id)
            change(endpoint)
            if await self._endpoints.save(endpoint):
                return endpoint
        raise EndpointChangedConcurrently()

    async def update(
        self,
        principal: Principal,
        endpoint_id: str,
        *,
        url: str | None,
        event_types: list[str] | None,
        description: str | None,
    ) -> Endpoint:
        if url is not None:
            check_url(url, self._policy)
        filters = check_filters(event_types, self._known) if event_types is not None else None
        now = self._clock()
        return await self._change(
            principal,
            endpoint_id,
            lambda e: e.change(url=url, event_types=filters, description=description, now=now),
        )

    async def disable(self, principal: Principal, endpoint_id: str) -> Endpoint:
        """No more deliveries; those waiting fail (``recover`` resends them)."""
        now = self._clock()
        endpoint = await self._change(
            principal, endpoint_id, lambda e: e.disable(DisabledReason.MANUAL, now)
        )
        await self._deliveries.fail_pending(
            principal.venue_id, endpoint_id, "The endpoint was disabled."
        )
        return endpoint

    async def enable(self, principal: Principal, endpoint_id: str) -> Endpoint:
        now = self._clock()
        return await self._change(principal, endpoint_id, lambda e: e.enable(now))

    async def rotate_secret(self, principal: Principal, endpoint_id: str) -> tuple[Endpoint, str]:
        """A new secret (shown this once); the old one keeps signing for the overlap."""
        secret: list[str] = []
        now = self._clock()

        def rotate(endpoint: Endpoint) -> None:
            secret[:] = [endpoint.rotate_secret(now, self._overlap)]

        endpoint = await self._change(principal, endpoint_id, rotate)
        return endpoint, secret[0]

    async def delete(self, principal: Principal, endpoint_id: str) -> None:
        """The endpoint and its delivery log."""
        ensure_role(principal, MANAGERS, "delete webhook endpoints")
        if not await self._endpoints.delete(principal.venue_id, endpoint_id):
            raise EndpointNotFound()
        await self._deliveries.delete_of(principal.venue_id, endpoint_id)
