"""Webhook deliveries on the real broker and store, to real HTTP receivers on 127.0.0.1.

An event published as another service would is fanned out to the venue's matching
endpoints and sent, signed by the Standard Webhooks scheme, retried by the (shortened)
schedule, and logged attempt by attempt.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from cloudevents.core.formats.json import JSONFormat
from prometheus_client import REGISTRY
from standardwebhooks.webhooks import Webhook

from gala.contracts.partners import ENDPOINT_TOPIC
from gala.identity import Role
from gala.settings import Settings
from gala.store import uses_index
from gala.testing import TopicTail, eventually
from partners.deliveries.domain import DeliveryStatus
from partners.deliveries.repository import DeliveryRepository

from .webhooks_support import Answer, Partners, partners_with, receiver, scheduled, won

pytestmark = pytest.mark.asyncio(loop_scope="session")
WON = "gala.opportunity.won.v1"


@pytest.fixture(scope="module")
async def partners(infra: Settings) -> AsyncIterator[Partners]:
    async with partners_with(infra) as running:
        yield running


async def test_a_delivery_is_a_signed_cloudevent_that_standard_webhooks_verifies(
    partners: Partners,
) -> None:
    venue, admin = partners.new_venue()
    async with receiver() as r:
        endpoint = await partners.add_endpoint(admin, r.url, [WON])
        assert endpoint["secret"].startswith("whsec_")
        event = won(venue)
        event_id = await partners.publish(event, event.opportunity_id)
        (request,) = await r.wait_for(1)

        payload = Webhook(endpoint["secret"]).verify(request.body, request.headers)
        assert request.headers["content-type"] == "application/cloudevents+json"
        assert request.headers["webhook-id"] == event_id
        assert payload["specversion"] == "1.0"
        assert payload["id"] == event_id and payload["type"] == WON
        assert payload["subject"] == event.opportunity_id
        assert payload["venueid"] == venue
        assert payload["data"]["opportunityId"] == event.opportunity_id
        cloudevent = JSONFormat().read(None, request.body)  # the CloudEvents SDK reads it
        assert cloudevent.get_id() == event_id and cloudevent.get_type() == WON
        assert cloudevent.get_extension("venueid") == venue
        assert cloudevent.get_data() == payload["data"]
        # the same event again (Kafka redelivers at least once) makes no second delivery
        await partners.publish(event, event.opportunity_id, event_id=event_id)
        await partners.publish(won(venue), "another")  # a later event, as a marker
        await r.wait_for(2)
        await asyncio.sleep(0.5)
        assert r.ids().count(event_id) == 1
        log = await partners.deliveries(admin, endpoint["id"])
        assert [d["eventId"] for d in log].count(event_id) == 1
        delivered = next(d for d in log if d["eventId"] == event_id)
        assert delivered["status"] == "SUCCEEDED"
        assert delivered["attempts"][0]["statusCode"] == 200
        assert delivered["attempts"][0]["response"] == "ok"


async def test_a_receiver_failing_three_times_then_succeeding_gets_it_once_after_four_attempts(
    partners: Partners,
) -> None:
    venue, admin = partners.new_venue()
    failing = [Answer(500, body=b"x" * 5000), Answer(502), Answer(504)]
    before = {outcome: attempts_of(outcome) for outcome in ("delivered", "refused")}
    async with receiver(failing) as r:
        endpoint = await partners.add_endpoint(admin, r.url, [WON])
        event = won(venue)
        await partners.publish(event, event.opportunity_id)
        delivery = await partners.delivery_when(
            admin, endpoint["id"], lambda d: d["status"] == "SUCCEEDED"
        )
        assert len(r.accepted()) == 1
        assert len(r.received) == 4
        assert len(set(r.ids())) == 1  # the same webhook-id every time
        attempts = delivery["attempts"]
        assert [a["statusCode"] for a in attempts] == [500, 502, 504, 200]
        assert delivery["attemptCount"] == 4
        assert len(attempts[0]["response"].encode()) == 1024  # the first KiB
        assert all(a["durationMs"] >= 0 and a["at"] for a in attempts)
        times = [datetime.fromisoformat(a["at"]) for a in attempts]
        assert all(
            later - earlier >= timedelta(seconds=0.25)
            for earlier, later in itertools.pairwise(times)
        )
        # the metrics count each attempt by its outcome (this process runs the workers)
        assert attempts_of("refused") - before["refused"] >= 3
        assert attempts_of("delivered") - before["delivered"] >= 1


def attempts_of(outcome: str) -> float:
    value = REGISTRY.get_sample_value("gala_webhook_attempts_total", {"outcome": outcome})
    return value or 0.0


async def test_410_gone_disables_the_endpoint_and_announces_it(
    partners: Partners, infra: Settings
) -> None:
    venue, admin = partners.new_venue()
    tail = TopicTail(infra.kafka_bootstrap, ENDPOINT_TOPIC)
    await tail.start()
    try:
        async with receiver(default=Answer(410)) as r:
            endpoint = await partners.add_endpoint(admin, r.url, [WON])
            event = won(venue)
            await partners.publish(event, event.opportunity_id)
            delivery = await partners.delivery_when(
                admin, endpoint["id"], lambda d: d["status"] == "FAILED"
            )
            assert [a["statusCode"] for a in delivery["attempts"]] == [410]
            disabled = await partners.endpoint(admin, endpoint["id"])
            assert disabled["enabled"] is False and disabled["disabledReason"] == "GONE"
            ((_, envelope),) = await tail.wait_for(endpoint["id"], 1)
            assert envelope.type == "gala.endpoint.disabled.v1"
            assert json.loads(envelope.data)["reason"] == "GONE"
            # a disabled endpoint gets nothing more
            await partners.publish(won(venue), "later")
            await asyncio.sleep(1.0)
            assert len(r.received) == 1
    finally:
        await tail.stop()


async def test_deliveries_carry_only_the_endpoint_s_own_venue_s_events(
    partners: Partners,
) -> None:
    venue_a, admin_a = partners.new_venue()
    venue_b, admin_b = partners.new_venue()
    async with receiver() as ra, receiver() as rb:
        endpoint_a = await partners.add_endpoint(admin_a, ra.url, [WON])
        endpoint_b = await partners.add_endpoint(admin_b, rb.url, [WON])
        a_events = [won(venue_a) for _ in range(3)]
        for event in a_events:
            await partners.publish(event, event.opportunity_id)
        b_event = won(venue_b)
        await partners.publish(b_event, b_event.opportunity_id)
        await ra.wait_for(3)
        await rb.wait_for(1)
        await asyncio.sleep(0.5)
        venues_a = {json.loads(r.body)["venueid"] for r in ra.received}
        venues_b = {json.loads(r.body)["venueid"] for r in rb.received}
        assert venues_a == {venue_a} and len(ra.received) == 3
        assert venues_b == {venue_b} and len(rb.received) == 1
        # and neither venue sees the other's endpoint or its log
        other = await partners.call("GET", f"/api/v1/partners/webhooks/{endpoint_a['id']}", admin_b)
        assert other.status_code == 404
        log = await partners.call(
            "GET", f"/api/v1/partners/webhooks/{endpoint_a['id']}/deliveries", admin_b
        )
        assert log.status_code == 404
        assert len(await partners.deliveries(admin_b, endpoint_b["id"])) == 1


async def test_an_aggregate_wildcard_receives_that_aggregate_s_events_only(
    partners: Partners,
) -> None:
    venue, admin = partners.new_venue()
    async with receiver() as r:
        await partners.add_endpoint(admin, r.url, ["gala.payment.*"])
        await partners.publish(won(venue), "not-a-payment")
        payment = scheduled(venue)
        payment_event = await partners.publish(payment, payment.payment_id)

        async def arrived() -> bool:
            return payment_event in r.ids()

        await eventually(arrived, timeout=20)
        await asyncio.sleep(0.5)
        # (billing, if one runs on this broker, schedules payments for the won opportunity:
        # those are payment events of the venue too)
        types = {json.loads(x.body)["type"] for x in r.received}
        assert all(t.startswith("gala.payment.") for t in types), types


async def test_retry_after_is_honoured_on_429(partners: Partners) -> None:
    venue, admin = partners.new_venue()
    async with receiver([Answer(429, headers={"Retry-After": "2"})]) as r:
        endpoint = await partners.add_endpoint(admin, r.url, [WON])
        event = won(venue)
        await partners.publish(event, event.opportunity_id)
        await partners.delivery_when(admin, endpoint["id"], lambda d: d["status"] == "SUCCEEDED")
        first, second = r.received
        assert second.at - first.at >= 2.0  # not the schedule's 0.3 s
        assert second.at - first.at < 6.0


async def test_recover_resends_what_failed_during_an_outage(partners: Partners) -> None:
    venue, admin = partners.new_venue()
    async with receiver(default=Answer(503)) as r:
        endpoint = await partners.add_endpoint(admin, r.url, [WON])
        since = datetime.now(UTC)
        events = [won(venue) for _ in range(3)]
        for event in events:
            await partners.publish(event, event.opportunity_id)

        async def all_failed() -> bool:
            log = await partners.deliveries(admin, endpoint["id"], status="FAILED")
            return len(log) == 3

        await eventually(all_failed, timeout=30)
        assert len(r.received) == 15  # five attempts each, then given up
        r.default = Answer(200)  # the outage is over
        response = await partners.call(
            "POST",
            f"/api/v1/partners/webhooks/{endpoint['id']}/recover",
            admin,
            {"since": since.isoformat()},
        )
        assert response.status_code == 202, response.text
        assert response.json() == {"resent": 3}

        async def all_succeeded() -> bool:
            log = await partners.deliveries(admin, endpoint["id"], status="SUCCEEDED")
            return len(log) == 3

        await eventually(all_succeeded, timeout=30)
        assert len(r.accepted()) == 3
        assert {r.headers["webhook-id"] for r in r.accepted()} == {
            d["eventId"] for d in await partners.deliveries(admin, endpoint["id"])
        }
        # nothing failed since now: nothing to resend
        again = await partners.call(
            "POST",
            f"/api/v1/partners/webhooks/{endpoint['id']}/recover",
            admin,
            {"since": since.isoformat()},
        )
        assert again.json() == {"resent": 0}


async def test_redeliver_sends_the_same_message_again(partners: Partners) -> None:
    venue, admin = partners.new_venue()
    async with receiver() as r:
        endpoint = await partners.add_endpoint(admin, r.url, [WON])
        event = won(venue)
        event_id = await partners.publish(event, event.opportunity_id)
        delivery = await partners.delivery_when(
            admin, endpoint["id"], lambda d: d["status"] == "SUCCEEDED"
        )
        path = f"/api/v1/partners/webhooks/{endpoint['id']}/deliveries/{delivery['id']}/redeliver"
        response = await partners.call("POST", path, admin)
        assert response.status_code == 202, response.text
        await r.wait_for(2)
        assert r.ids() == [event_id, event_id]
        assert r.received[0].body == r.received[1].body
        again = await partners.delivery_when(
            admin, endpoint["id"], lambda d: d["attemptCount"] == 2 and d["status"] == "SUCCEEDED"
        )
        assert len(again["attempts"]) == 2
        missing = await partners.call(
            "POST", f"/api/v1/partners/webhooks/{endpoint['id']}/deliveries/nope/redeliver", admin
        )
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"


async def test_a_ping_goes_the_way_events_go(partners: Partners) -> None:
    _, admin = partners.new_venue()
    async with receiver() as r:
        endpoint = await partners.add_endpoint(admin, r.url, [WON])
        response = await partners.call(
            "POST", f"/api/v1/partners/webhooks/{endpoint['id']}/ping", admin
        )
        assert response.status_code == 202, response.text
        assert response.json()["eventType"] == "gala.webhook.ping.v1"
        (request,) = await r.wait_for(1)
        payload = Webhook(endpoint["secret"]).verify(request.body, request.headers)
        assert payload["type"] == "gala.webhook.ping.v1"
        assert payload["data"]["endpointId"] == endpoint["id"]
        await partners.delivery_when(admin, endpoint["id"], lambda d: d["status"] == "SUCCEEDED")


async def test_a_slow_endpoint_delays_no_other(partners: Partners) -> None:
    venue, admin = partners.new_venue()
    async with receiver(default=Answer(200, delay=4.0)) as slow, receiver() as fast:
        await partners.add_endpoint(admin, slow.url, [WON])
        await partners.add_endpoint(admin, fast.url, [WON])
        started = asyncio.get_running_loop().time()
        for _ in range(12):
            event = won(venue)
            await partners.publish(event, event.opportunity_id)
        await fast.wait_for(12, timeout=10)
        took = asyncio.get_running_loop().time() - started
        assert took < 4.0, f"the fast endpoint waited for the slow one ({took:.1f} s)"
        assert len(slow.received) <= 4  # at most 4 at once to one endpoint


async def test_the_delivery_log_filters_and_pages_through_an_index(partners: Partners) -> None:
    venue, admin = partners.new_venue()
    async with receiver() as r:
        endpoint = await partners.add_endpoint(admin, r.url, [WON, "gala.payment.*"])
        for _ in range(3):
            event = won(venue)
            await partners.publish(event, event.opportunity_id)
        payment = scheduled(venue)
        await partners.publish(payment, payment.payment_id)
        await r.wait_for(4)

        async def all_succeeded() -> bool:
            log = await partners.deliveries(admin, endpoint["id"], status="SUCCEEDED")
            return len(log) == 4

        await eventually(all_succeeded, timeout=20)
        payments = await partners.deliveries(
            admin, endpoint["id"], eventType="gala.payment.scheduled.v1"
        )
        assert [d["eventType"] for d in payments] == ["gala.payment.scheduled.v1"]
        assert await partners.deliveries(admin, endpoint["id"], status="FAILED") == []
        seen: list[str] = []
        cursor = None
        while True:
            params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
            response = await partners.call(
                "GET", f"/api/v1/partners/webhooks/{endpoint['id']}/deliveries", admin, **params
            )
            page = response.json()
            seen += [d["id"] for d in page["items"]]
            cursor = page["nextCursor"]
            if not cursor:
                break
        assert len(seen) == len(set(seen)) == 4
        bad = await partners.call(
            "GET", f"/api/v1/partners/webhooks/{endpoint['id']}/deliveries", admin, status="NOPE"
        )
        assert bad.status_code == 422
        repository = DeliveryRepository(partners.runtime.store)
        for status, event_type in ((None, None), (DeliveryStatus.FAILED, None), (None, WON)):
            plan = await repository.explain_page(venue, endpoint["id"], status, event_type)
            assert uses_index(plan), plan
        assert uses_index(await repository.explain_claim(datetime.now(UTC)))


async def test_only_admins_and_partners_of_the_venue_see_deliveries(partners: Partners) -> None:
    venue, admin = partners.new_venue()
    async with receiver() as r:
        endpoint = await partners.add_endpoint(admin, r.url, [WON])
        path = f"/api/v1/partners/webhooks/{endpoint['id']}/deliveries"
        partner = partners.member(venue, Role.PARTNER, "partner-app:test")
        assert (await partners.call("GET", path, partner)).status_code == 200
        for role in (Role.SALES, Role.PROJECT_MANAGER, Role.STAFF, Role.CLIENT):
            answer = await partners.call("GET", path, partners.member(venue, role))
            assert answer.status_code == 403, role
