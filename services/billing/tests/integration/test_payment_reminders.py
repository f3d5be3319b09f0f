"""Payment reminders on two worker replicas, in seconds of real time: each reminder's
event goes out exactly once, its mail reaches the client, a failed send is retried."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from prometheus_client import REGISTRY

from gala.contracts.contacts import ContactCreated
from gala.identity import Role
from gala.testing import eventually, free_port

pytestmark = pytest.mark.asyncio(loop_scope="session")

FAST = {
    "reminders_before_due": [timedelta(seconds=3)],
    "reminders_after_due": [timedelta(seconds=3)],
    "reminder_tick_seconds": 0.2,
    "reminder_lease_seconds": 2.0,
    "reminder_mail_retry_seconds": 0.5,
    "smtp_timeout_seconds": 2.0,
}


async def client_contact(billing, venue):
    contact_id = str(uuid.uuid4())
    email = f"couple-{contact_id[:6]}@wed.example"
    created = ContactCreated(
        contact_id=contact_id, venue_id=venue, name="Ada Couple", email=email,
        lead_source="WEBSITE", status="LEAD", lead_heat=10,
    )  # fmt: skip
    await billing.publish(created, contact_id)

    async def known():
        return await billing.runtime.store["contacts"].find_one({"_id": contact_id})

    await eventually(known)
    return contact_id, email


async def deposit_due_in(billing, venue, contact_id, seconds):
    """A won opportunity whose deposit falls due ``seconds`` from now (policy: 0 days)."""
    admin = billing.member(venue, Role.ADMIN)
    policy = {"depositPercent": "40", "depositDueDaysAfterWin": 0, "balanceDueDaysBeforeEvent": 0}
    assert (await billing.call("PUT", "/api/v1/billing/policy", admin, policy)).status_code == 200
    won_at = datetime.now(UTC) + timedelta(seconds=seconds)
    _, payments = await billing.win(
        venue,
        contact_id=contact_id,
        value=Decimal("500.00"),
        won_at=won_at,
        event_date=won_at + timedelta(days=300),
    )
    return payments[0]


async def test_each_reminder_fires_once_across_two_replicas_and_mails_the_client(
    billing_replicas,
):
    async with billing_replicas(**FAST) as running:
        (one, two), sink, payment_events = running.replicas, running.sink, running.payment_events
        venue, admin = one.new_venue()
        contact_id, email = await client_contact(one, venue)
        deposit = await deposit_due_in(one, venue, contact_id, seconds=8)

        types = await payment_events.distinct_types(deposit["id"], 4, timeout=30)
        assert types == [
            "gala.payment.scheduled.v1",
            "gala.payment.due.v1",
            "gala.payment.overdue.v1",
            "gala.payment.overdue.v1",
        ]
        got = (await two.call("GET", f"/api/v1/payments/{deposit['id']}", admin)).json()
        assert got["status"] == "OVERDUE"

        async def three_mails():
            mails = sink.sent_to(email)
            return mails if len(mails) >= 3 else None

        mails = await eventually(three_mails, timeout=20)
        assert [m["Subject"] for m in mails] == [
            "Payment of 200.00 EUR due on " + deposit["dueDate"][:10],
            "Payment of 200.00 EUR is overdue",
            "Payment of 200.00 EUR is overdue",
        ]
        assert "Hello Ada Couple" in mails[0].get_content()
        # paid: no more reminders
        await one.call(
            "POST", f"/api/v1/payments/{deposit['id']}/record", admin,
            {"paymentMethod": "cash"}, headers={"Idempotency-Key": "r-1"},
        )  # fmt: skip
        assert (await payment_events.distinct_types(deposit["id"], 5))[-1] == "gala.payment.paid.v1"
        with pytest.raises(AssertionError):  # nothing more within the next overdue reminder
            await payment_events.distinct_types(deposit["id"], 6, timeout=4)
        assert len(sink.sent_to(email)) == 3


def fired(kind: str) -> float:
    """``gala_reminders_fired_total`` of this process (the replicas run in it)."""
    return REGISTRY.get_sample_value("gala_reminders_fired_total", {"kind": kind}) or 0.0


async def test_many_reminders_due_at_once_go_out_once_each(billing_replicas):
    async with billing_replicas(**{**FAST, "reminders_after_due": []}) as running:
        one, sink, payment_events = running.replicas[0], running.sink, running.payment_events
        venue, _ = one.new_venue()
        contact_id, email = await client_contact(one, venue)
        fired_before = {kind: fired(kind) for kind in ("due", "overdue")}
        deposits = await asyncio.gather(
            *(deposit_due_in(one, venue, contact_id, seconds=8) for _ in range(8))
        )
        for deposit in deposits:
            await payment_events.distinct_types(deposit["id"], 3, timeout=30)

        async def all_mailed():
            return len(sink.sent_to(email)) >= 16 or None

        await eventually(all_mailed, timeout=30)
        with pytest.raises(AssertionError):  # nothing more: one event per reminder
            await payment_events.distinct_types(deposits[0]["id"], 4, timeout=2)
        for deposit in deposits:
            types = [e.type for e in payment_events.distinct(deposit["id"])]
            assert types == [
                "gala.payment.scheduled.v1",
                "gala.payment.due.v1",
                "gala.payment.overdue.v1",
            ]
        assert len(sink.sent_to(email)) == 16
        # the metrics count each reminder once, whichever replica sent it
        assert {kind: fired(kind) - n for kind, n in fired_before.items()} == {
            "due": 8,
            "overdue": 8,
        }


async def test_a_mail_server_that_is_down_is_retried_without_holding_up_events(
    billing_replicas,
):
    dead_port = free_port()  # nothing listens here
    overrides = {**FAST, "smtp_port": dead_port, "reminders_after_due": []}
    async with billing_replicas(count=1, **overrides) as running:
        one, payment_events = running.replicas[0], running.payment_events
        venue, _ = one.new_venue()
        contact_id, _ = await client_contact(one, venue)
        deposit = await deposit_due_in(one, venue, contact_id, seconds=8)
        assert await payment_events.distinct_types(deposit["id"], 2) == [
            "gala.payment.scheduled.v1",
            "gala.payment.due.v1",
        ]

        async def retried():
            stored = await one.runtime.store["payments"].find_one({"_id": deposit["id"]})
            return stored if stored.get("mailAttempts", 0) >= 2 else None

        stored = await eventually(retried, timeout=20)
        assert stored["mailsPending"] == ["due:3"]
        # the overdue reminder still fires on time
        types = await payment_events.distinct_types(deposit["id"], 3)
        assert types[2] == "gala.payment.overdue.v1"
