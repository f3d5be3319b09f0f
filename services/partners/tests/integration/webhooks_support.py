"""What the webhook tests share: the partners service under test (short retry waits,
deliveries to 127.0.0.1 allowed), real HTTP receivers on loopback that answer as a test
scripts them, and events as other services publish them."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from fastapi import FastAPI, Request, Response

from gala.app import ProcessRole
from gala.contracts.billing import PaymentScheduled
from gala.contracts.pipeline import OpportunityWon
from gala.identity import Principal
from gala.settings import Settings
from gala.testing import ServiceUnderTest, eventually, http_server, own_database, running_service
from partners.bootstrap import service
from partners.settings import PartnersSettings

FAST = {
    "webhook_allow_http": True,
    "webhook_allow_private_targets": True,
    "webhook_retry_schedule": [timedelta(seconds=0.3)] * 4,
    "webhook_retry_jitter": 0.0,
    "webhook_tick_seconds": 0.2,
    "webhook_timeout_seconds": 5.0,
    "webhook_lease_seconds": 20.0,
}
"""Five attempts 0.3 s apart; receivers on 127.0.0.1 over http."""


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    """time.monotonic() on arrival."""
    status: int


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    delay: float = 0.0


@dataclass
class Receiver:
    """A real HTTP server on 127.0.0.1: answers the n-th request with ``script[n]`` (then
    ``default``), and keeps every request."""

    url: str = ""
    script: list[Answer] = field(default_factory=list)
    default: Answer = field(default_factory=Answer)
    received: list[Received] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/{path:path}")
        async def receive(path: str, request: Request) -> Response:
            index = len(self.received)
            answer = self.script[index] if index < len(self.script) else self.default
            self.received.append(
                Received(
                    path, dict(request.headers), await request.body(), time.monotonic(),
                    answer.status,
                )
            )  # fmt: skip
            if answer.delay:
                await asyncio.sleep(answer.delay)
            return Response(answer.body, answer.status, headers=answer.headers)

        return app

    def accepted(self) -> list[Received]:
        return [r for r in self.received if 200 <= r.status < 300]

    def ids(self) -> list[str]:
        return [r.headers["webhook-id"] for r in self.received]

    async def wait_for(self, count: int, timeout: float = 20.0) -> list[Received]:
        async def arrived() -> list[Received] | None:
            return self.received if len(self.received) >= count else None

        return list(await eventually(arrived, timeout=timeout))


@asynccontextmanager
async def receiver(
    script: Sequence[Answer] = (), default: Answer | None = None
) -> AsyncIterator[Receiver]:
    r = Receiver(script=list(script), default=default or Answer())
    async with http_server(r.app()) as url:
        r.url = url + "/hook"
        yield r


class Partners(ServiceUnderTest):
    """The partners service under test."""

    async def add_endpoint(
        self, principal: Principal, url: str, event_types: Sequence[str], description: str = ""
    ) -> dict[str, Any]:
        body = {"url": url, "eventTypes": list(event_types), "description": description}
        response = await self.call("POST", "/api/v1/partners/webhooks", principal, body)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def deliveries(
        self, principal: Principal, endpoint_id: str, **params: Any
    ) -> list[dict[str, Any]]:
        response = await self.call(
            "GET", f"/api/v1/partners/webhooks/{endpoint_id}/deliveries", principal, **params
        )
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def delivery_when(
        self,
        principal: Principal,
        endpoint_id: str,
        done: Callable[[dict[str, Any]], bool],
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        """The endpoint's (only) delivery once ``done`` holds for it."""

        async def settled() -> dict[str, Any] | None:
            items = await self.deliveries(principal, endpoint_id)
            return items[0] if items and done(items[0]) else None

        found: dict[str, Any] = await eventually(settled, timeout=timeout, interval=0.2)
        return found

    async def endpoint(self, principal: Principal, endpoint_id: str) -> dict[str, Any]:
        response = await self.call("GET", f"/api/v1/partners/webhooks/{endpoint_id}", principal)
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found


def partners_with(infra: Settings, **overrides: Any) -> AbstractAsyncContextManager[Partners]:
    """The partners service (``all`` role) on a database of its own, with ``FAST``
    settings and ``overrides``."""

    @asynccontextmanager
    async def run() -> AsyncIterator[Partners]:
        async with own_database(service, infra) as base:
            settings = PartnersSettings(**{**dict(base), **FAST, **overrides})
            async with running_service(service, settings, ProcessRole.ALL, Partners) as running:
                yield running

    return run()


def won(venue: str) -> OpportunityWon:
    return OpportunityWon(
        opportunity_id=str(uuid.uuid4()),
        venue_id=venue,
        contact_id=str(uuid.uuid4()),
        name="Smith wedding",
        stage="contract sent",
        value=Decimal("1000.00"),
        currency="EUR",
        event_date=datetime(2027, 6, 12, 15, 0, tzinfo=UTC),
        won_at=datetime.now(UTC),
    )


def scheduled(venue: str) -> PaymentScheduled:
    return PaymentScheduled(
        payment_id=str(uuid.uuid4()),
        venue_id=venue,
        opportunity_id=str(uuid.uuid4()),
        amount=Decimal("300.00"),
        currency="EUR",
    )
