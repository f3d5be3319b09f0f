"""The billing service on the real broker and store, served in-process.

``billing`` consumes events and serves the API (the ``all`` role), on a database and
consumer group of its own; each test works in venues of its own. Other services are
not running: tests publish the events they would (a won or lost opportunity, a project)
and read what this service publishes.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from fastapi import FastAPI, Request, Response
from moto.server import ThreadedMotoServer

from billing.bootstrap import service
from billing.settings import BillingSettings
from gala.app import ProcessRole
from gala.contracts.billing import PAYMENT_TOPIC
from gala.contracts.pipeline import OpportunityLost, OpportunityWon
from gala.identity import Role
from gala.mailsink import MailSink
from gala.settings import Settings
from gala.testing import (
    ServiceUnderTest,
    StripeMockMissing,
    TopicTail,
    eventually,
    free_port,
    http_server,
    own_database,
    running_service,
    wait_until_assigned,
)
from gala.testing import stripe_mock as run_stripe_mock

EVENT_DATE = datetime(2027, 6, 12, 15, 0, tzinfo=UTC)
WON_AT = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


class Billing(ServiceUnderTest):
    """The billing service under test."""

    def won_event(self, venue: str, **fields: Any) -> OpportunityWon:
        values: dict[str, Any] = {
            "opportunity_id": str(uuid.uuid4()),
            "venue_id": venue,
            "contact_id": str(uuid.uuid4()),
            "name": "Smith wedding",
            "stage": "contract sent",
            "value": Decimal("1000.01"),
            "currency": "EUR",
            "event_type": "WEDDING",
            "event_date": EVENT_DATE,
            "guest_count": 120,
            "won_at": WON_AT,
        }
        return OpportunityWon(**{**values, **fields})

    def lost_event(
        self, won: OpportunityWon, reason: str = "Chose another venue"
    ) -> OpportunityLost:
        fields = won.model_dump(exclude={"won_at", "outcome"})
        return OpportunityLost(**fields, lost_at=datetime.now(UTC), reason=reason)

    async def win(self, venue: str, **fields: Any) -> tuple[OpportunityWon, list[dict[str, Any]]]:
        """Publish a won opportunity; its schedule once made (by due date)."""
        event = self.won_event(venue, **fields)
        await self.publish(event, event.opportunity_id)
        return event, await self.schedule_of(venue, event.opportunity_id)

    async def schedule_of(
        self, venue: str, opportunity_id: str, count: int = 2
    ) -> list[dict[str, Any]]:
        admin = self.member(venue, Role.ADMIN)

        async def made() -> list[dict[str, Any]] | None:
            response = await self.call(
                "GET", "/api/v1/payments", admin, opportunityId=opportunity_id
            )
            items: list[dict[str, Any]] = response.json()["items"]
            return items if len(items) >= count else None

        payments: list[dict[str, Any]] = await eventually(made)
        return payments


@pytest.fixture(scope="module")
async def billing(infra: Settings) -> AsyncIterator[Billing]:
    async with (
        own_database(service, infra) as settings,
        running_service(service, settings, ProcessRole.ALL, Billing) as running,
    ):
        yield running


@pytest.fixture
def billing_replicas(infra: Settings, tmp_path: Path) -> Callable[..., Replicas]:
    """Start ``count`` replicas of billing (``all`` role) on one database of their own,
    with ``BillingSettings`` overrides, mailing to a sink; also a tail of the payment
    topic started before them."""

    @asynccontextmanager
    async def start(count: int = 2, **overrides: Any) -> AsyncIterator[ReplicaSet]:
        sink = MailSink(tmp_path / f"mail-{uuid.uuid4().hex[:6]}", port=free_port())
        sink.start()
        try:
            async with own_database(service, infra) as base, AsyncExitStack() as stack:
                fields = {**dict(base), "smtp_host": sink.host, "smtp_port": sink.port}
                settings = BillingSettings(**{**fields, **overrides})
                running = [
                    await stack.enter_async_context(
                        running_service(service, settings, ProcessRole.ALL, Billing)
                    )
                    for _ in range(count)
                ]
                for replica in running:  # each joined: the group settled on every one
                    await wait_until_assigned(replica.runtime)
                tail = TopicTail(infra.kafka_bootstrap, PAYMENT_TOPIC)
                await tail.start()
                stack.push_async_callback(tail.stop)
                yield ReplicaSet(running, sink, tail)
        finally:
            sink.stop()

    return start


@dataclass
class ReplicaSet:
    replicas: list[Billing]
    sink: MailSink
    payment_events: TopicTail


Replicas = AbstractAsyncContextManager[ReplicaSet]


STRIPE_WEBHOOK_SECRET = "whsec_gala_test_secret"


@pytest.fixture(scope="session")
async def stripe_mock() -> AsyncIterator[str]:
    """Stripe's API mock server (``make tools`` builds it; ``make test`` does so first)."""
    try:
        async with run_stripe_mock() as url:
            yield url
    except StripeMockMissing as missing:
        pytest.fail(str(missing), pytrace=False)


@dataclass
class StripeCalls:
    """What billing asked of Stripe (stripe-mock, through a recording pass-through)."""

    url: str = ""
    requests: list[tuple[str, str]] = field(default_factory=list)
    """(method, path) of each request, in order."""

    def expired(self) -> list[str]:
        """The checkout sessions billing asked Stripe to expire."""
        prefix, suffix = "/v1/checkout/sessions/", "/expire"
        return [
            path.removeprefix(prefix).removesuffix(suffix)
            for method, path in self.requests
            if method == "POST" and path.startswith(prefix) and path.endswith(suffix)
        ]


FORWARDED = ("authorization", "content-type", "idempotency-key", "stripe-version")


@pytest.fixture(scope="session")
async def stripe_api(stripe_mock: str) -> AsyncIterator[StripeCalls]:
    """stripe-mock behind a pass-through that records each request billing makes."""
    calls = StripeCalls()
    proxy = FastAPI()
    async with httpx.AsyncClient(base_url=stripe_mock) as upstream:

        @proxy.api_route("/{path:path}", methods=["GET", "POST", "DELETE"])
        async def forward(path: str, request: Request) -> Response:
            calls.requests.append((request.method, f"/{path}"))
            answer = await upstream.request(
                request.method,
                f"/{path}",
                params=request.query_params,
                content=await request.body(),
                headers={k: v for k, v in request.headers.items() if k.lower() in FORWARDED},
            )
            kind = answer.headers.get("content-type")
            return Response(answer.content, answer.status_code, media_type=kind)

        async with http_server(proxy) as url:
            calls.url = url
            yield calls


@pytest.fixture(scope="module")
async def billing_with_stripe(
    infra: Settings, stripe_api: StripeCalls, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Billing]:
    """Billing with online payments: Stripe's API is stripe-mock (its requests recorded
    in ``stripe_api``); webhooks are signed with a test secret; documents in a folder."""
    async with own_database(service, infra) as base:
        settings = BillingSettings(
            **{
                **dict(base),
                "stripe_api_key": "sk_test_gala",
                "stripe_api_base": stripe_api.url,
                "stripe_webhook_secret": STRIPE_WEBHOOK_SECRET,
                "blob_dir": tmp_path_factory.mktemp("blobs"),
            }
        )
        async with running_service(service, settings, ProcessRole.ALL, Billing) as running:
            yield running


DOCUMENT_MAX_BYTES = 64 * 1024


S3_BUCKET = "gala-test-documents"


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """An S3-compatible object store (moto's server) with the test bucket."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    s3 = boto3.client(
        "s3", endpoint_url=url, region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test",
    )  # fmt: skip
    s3.create_bucket(Bucket=S3_BUCKET)
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture(scope="module", params=["local", "s3"])
async def billing_docs(
    request: pytest.FixtureRequest, infra: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Billing]:
    """Billing keeping document files (up to 64 KiB) in a folder of its own, or in an
    S3-compatible bucket."""
    store: dict[str, Any] = {"blob_store": request.param}
    if request.param == "s3":
        store |= {
            "s3_bucket": S3_BUCKET,
            "s3_endpoint_url": request.getfixturevalue("s3_server"),
            "s3_access_key_id": "test",
            "s3_secret_access_key": "test",
            "s3_prefix": f"{uuid.uuid4().hex[:8]}/",
        }
    async with own_database(service, infra) as base:
        settings = BillingSettings(
            **{
                **dict(base),
                "blob_dir": tmp_path_factory.mktemp("blobs"),
                "document_max_bytes": DOCUMENT_MAX_BYTES,
                **store,
            }
        )
        async with running_service(service, settings, ProcessRole.ALL, Billing) as running:
            yield running


@pytest.fixture
async def payment_events(billing: Billing, infra: Settings) -> AsyncIterator[TopicTail]:
    tail = TopicTail(infra.kafka_bootstrap, PAYMENT_TOPIC)
    await tail.start()
    try:
        yield tail
    finally:
        await tail.stop()
