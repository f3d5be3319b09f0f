"""Deliveries never reach a refused address, whatever a name resolves to at delivery
time (DNS rebinding): the worker resolves, checks and connects to the checked address."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from gala.settings import Settings
from gala.store import utc_now
from partners.deliveries.sender import Sender, guarded_client
from partners.webhooks.domain import Endpoint
from partners.webhooks.repository import EndpointRepository

from .webhooks_support import Partners, partners_with, receiver, won

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="module")
async def strict(infra: Settings) -> AsyncIterator[Partners]:
    async with partners_with(infra, webhook_allow_private_targets=False) as running:
        yield running


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
async def test_the_sender_refuses_a_name_or_address_of_this_machine(host: str) -> None:
    async with receiver() as r:
        url = r.url.replace("127.0.0.1", host)
        sender = Sender(guarded_client(allow_private=False, connections=4), 5.0)
        try:
            attempt = await sender.post(url, {}, b"{}", datetime.now(UTC))
        finally:
            await sender.aclose()
        assert attempt.status_code is None
        assert attempt.error is not None and "refused" in attempt.error
        assert "loopback" in attempt.error
        assert r.received == []
        allowed = Sender(guarded_client(allow_private=True, connections=4), 5.0)
        try:
            assert (await allowed.post(url, {}, b"{}", datetime.now(UTC))).status_code == 200
        finally:
            await allowed.aclose()


async def test_an_endpoint_whose_name_now_resolves_to_loopback_gets_nothing(
    strict: Partners,
) -> None:
    venue, admin = strict.new_venue()
    async with receiver() as r:
        # accepted once (its name resolved to a public address then); now it is loopback
        url = r.url.replace("127.0.0.1", "localhost")
        endpoint = Endpoint.create(
            str(uuid.uuid4()), venue, url, ["gala.opportunity.won.v1"], "", utc_now()
        )
        await EndpointRepository(strict.runtime.store, strict.runtime.outbox).insert(endpoint)
        event = won(venue)
        await strict.publish(event, event.opportunity_id)
        delivery = await strict.delivery_when(admin, endpoint.id, lambda d: d["attemptCount"] >= 2)
        assert all(a["statusCode"] is None for a in delivery["attempts"])
        assert "refused" in delivery["attempts"][0]["error"]
        assert r.received == []
