"""Secret rotation: the old secret keeps signing beside the new one for the overlap
(24 h; 3 s here), then only the new one signs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from gala.settings import Settings

from .webhooks_support import Partners, partners_with, receiver, won

pytestmark = pytest.mark.asyncio(loop_scope="session")
OVERLAP = 3.0


@pytest.fixture(scope="module")
async def partners(infra: Settings) -> AsyncIterator[Partners]:
    async with partners_with(infra, webhook_secret_overlap=timedelta(seconds=OVERLAP)) as running:
        yield running


async def test_both_secrets_sign_during_the_overlap_then_only_the_new_one(
    partners: Partners,
) -> None:
    venue, admin = partners.new_venue()
    async with receiver() as r:
        endpoint = await partners.add_endpoint(admin, r.url, ["gala.opportunity.*"])
        old = endpoint["secret"]
        path = f"/api/v1/partners/webhooks/{endpoint['id']}/secret/rotate"
        rotated = await partners.call("POST", path, admin)
        assert rotated.status_code == 200, rotated.text
        new = rotated.json()["secret"]
        assert new != old and new.startswith("whsec_")
        assert rotated.json()["previousSecretExpiresAt"] is not None

        event = won(venue)
        await partners.publish(event, event.opportunity_id)
        (during,) = await r.wait_for(1)
        assert len(during.headers["webhook-signature"].split(" ")) == 2
        Webhook(new).verify(during.body, during.headers)
        Webhook(old).verify(during.body, during.headers)

        await asyncio.sleep(OVERLAP + 0.5)
        event = won(venue)
        await partners.publish(event, event.opportunity_id)
        _, after = await r.wait_for(2)
        assert len(after.headers["webhook-signature"].split(" ")) == 1
        Webhook(new).verify(after.body, after.headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(old).verify(after.body, after.headers)
        got = await partners.endpoint(admin, endpoint["id"])
        assert "secret" not in got
