"""Online payments: a Stripe Checkout session for an installment (against stripe-mock),
and Stripe's signed webhook marking it paid, once, however often it arrives."""

import contextlib
import hashlib
import hmac
import json
import time
import uuid
from decimal import Decimal

import pytest

from gala.contracts.projects import ProjectCreated
from gala.identity import Role
from gala.testing import TopicTail, eventually

pytestmark = pytest.mark.asyncio(loop_scope="session")

SECRET = "whsec_gala_test_secret"  # the conftest's billing_with_stripe secret
WEBHOOK = "/api/v1/billing/stripe/webhook"
SCHEDULED = "gala.payment.scheduled.v1"


def signed(payload: bytes, *, secret: str = SECRET, at: int | None = None) -> dict[str, str]:
    """A Stripe-Signature header as Stripe computes it."""
    timestamp = at if at is not None else int(time.time())
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return {"Stripe-Signature": f"t={timestamp},v1={mac.hexdigest()}"}


def minor(payment: dict) -> int:
    """The installment's amount due in minor units (the tests' currencies have 2 decimals)."""
    return int(Decimal(payment["amount"]) * 100)


def session_event(
    payment: dict,
    *,
    kind="checkout.session.completed",
    status="paid",
    pi=None,
    session_id=None,
    amount=None,
    currency=None,
):
    """A Stripe event about a checkout session for ``payment`` (by default: its exact
    amount due, in its currency)."""
    session = {
        "id": session_id or f"cs_test_{uuid.uuid4().hex[:12]}",
        "object": "checkout.session",
        "amount_total": minor(payment) if amount is None else amount,
        "currency": (currency or payment["currency"]).lower(),
        "payment_status": status,
        "payment_intent": pi or f"pi_{uuid.uuid4().hex[:12]}",
        "payment_method_types": ["card"],
        "client_reference_id": payment["id"],
        "metadata": {"paymentId": payment["id"], "venueId": payment["venueId"]},
    }
    event = {
        "id": f"evt_{uuid.uuid4().hex[:12]}",
        "object": "event",
        "type": kind,
        "api_version": "2024-06-20",
        "data": {"object": session},
    }
    return json.dumps(event).encode()


async def changes(tail: TopicTail, subject: str, count: int, timeout: float = 20.0) -> list[str]:
    """The types of the first ``count`` distinct events about ``subject`` after it was
    scheduled (a billing of another test run on the same broker may schedule the same
    deterministic installment ids too, so "scheduled" is left out)."""

    async def enough():
        with contextlib.suppress(AssertionError):  # poll the topic a little
            await tail.distinct_types(subject, 10_000, timeout=0.2)
        found = [e.type for e in tail.distinct(subject) if e.type != SCHEDULED]
        return found[:count] if len(found) >= count else None

    found: list[str] = await eventually(enough, timeout=timeout)
    return found


async def post_webhook(billing, payload: bytes, headers: dict[str, str]):
    return await billing.client.post(
        WEBHOOK, content=payload, headers={"Content-Type": "application/json", **headers}
    )


async def client_of(billing, venue, won):
    client = billing.member(venue, Role.CLIENT)
    project = ProjectCreated(
        project_id=f"project-{won.opportunity_id}", venue_id=venue,
        opportunity_id=won.opportunity_id, name="Smith wedding", status="ACTIVE",
        start_date=won.event_date, end_date=won.event_date, client_ids=[client.user_id],
    )  # fmt: skip
    await billing.publish(project, project.project_id)

    async def sees():
        items = (await billing.call("GET", "/api/v1/payments", client)).json()["items"]
        return len(items) == 2 or None

    await eventually(sees)
    return client


async def test_a_client_opens_a_checkout_for_their_own_unpaid_installment(billing_with_stripe):
    billing = billing_with_stripe
    venue, admin = billing.new_venue()
    won, (deposit, balance) = await billing.win(venue)
    client = await client_of(billing, venue, won)

    opened = await billing.call("POST", f"/api/v1/payments/{deposit['id']}/checkout", client)
    assert opened.status_code == 200, opened.text
    assert opened.json()["url"].startswith("https://checkout.stripe.com/")
    assert opened.json()["sessionId"].startswith("cs_")
    assert (
        await billing.call("POST", f"/api/v1/payments/{balance['id']}/checkout", admin)
    ).status_code == 200
    _, (other, _) = await billing.win(venue)
    hidden = await billing.call("POST", f"/api/v1/payments/{other['id']}/checkout", client)
    assert hidden.status_code == 404
    staff = billing.member(venue, Role.PROJECT_MANAGER)
    refused = await billing.call("POST", f"/api/v1/payments/{other['id']}/checkout", staff)
    assert refused.status_code == 403
    await billing.call(
        "POST", f"/api/v1/payments/{other['id']}/record", admin, {"paymentMethod": "cash"},
        headers={"Idempotency-Key": "cash-1"},
    )  # fmt: skip
    paid = await billing.call("POST", f"/api/v1/payments/{other['id']}/checkout", admin)
    assert paid.status_code == 409


async def test_without_stripe_checkout_is_unavailable(billing):
    venue, admin = billing.new_venue()
    _, (deposit, _) = await billing.win(venue)
    response = await billing.call("POST", f"/api/v1/payments/{deposit['id']}/checkout", admin)
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_signed_webhook_marks_the_payment_paid_once(billing_with_stripe, infra):
    billing = billing_with_stripe
    venue, admin = billing.new_venue()
    _, (deposit, _) = await billing.win(venue)
    tail = TopicTail(infra.kafka_bootstrap, "gala.billing.payment")
    await tail.start()
    try:
        payload = session_event(deposit, pi="pi_gala_1")
        first = await post_webhook(billing, payload, signed(payload))
        assert first.status_code == 200, first.text
        got = (await billing.call("GET", f"/api/v1/payments/{deposit['id']}", admin)).json()
        assert got["status"] == "PAID"
        assert (got["paymentMethod"], got["externalPaymentId"]) == ("card", "pi_gala_1")
        # the same event again, and Stripe's later events about it: nothing changes
        again = await post_webhook(billing, payload, signed(payload))
        assert again.status_code == 200
        later = session_event(deposit, kind="checkout.session.expired", status="unpaid")
        assert (await post_webhook(billing, later, signed(later))).status_code == 200
        assert await changes(tail, deposit["id"], 1) == ["gala.payment.paid.v1"]
        with pytest.raises(AssertionError):  # one paid event, not two
            await changes(tail, deposit["id"], 2, timeout=2)
        after = (await billing.call("GET", f"/api/v1/payments/{deposit['id']}", admin)).json()
        assert after == got
    finally:
        await tail.stop()


async def test_a_bad_or_stale_signature_is_refused_and_changes_nothing(billing_with_stripe):
    billing = billing_with_stripe
    venue, admin = billing.new_venue()
    _, (deposit, _) = await billing.win(venue)
    payload = session_event(deposit)
    for headers in (
        {},
        signed(payload, secret="whsec_someone_else"),
        signed(payload, at=int(time.time()) - 3600),  # replayed an hour later
        signed(payload + b" "),  # signed something else
        {"Stripe-Signature": "t=1,v1=00"},
    ):
        refused = await post_webhook(billing, payload, headers)
        assert refused.status_code == 400, headers
        assert refused.headers["content-type"].startswith("application/problem+json")
    got = (await billing.call("GET", f"/api/v1/payments/{deposit['id']}", admin)).json()
    assert got["status"] == "PENDING" and got["externalPaymentId"] is None


async def test_money_for_a_cancelled_installment_is_acknowledged_but_not_booked(
    billing_with_stripe,
):
    billing = billing_with_stripe
    venue, admin = billing.new_venue()
    _, (deposit, _) = await billing.win(venue)
    path = f"/api/v1/payments/{deposit['id']}"
    assert (await billing.call("PATCH", path, admin, {"status": "CANCELLED"})).status_code == 200
    payload = session_event(deposit)
    assert (await post_webhook(billing, payload, signed(payload))).status_code == 200
    got = (await billing.call("GET", path, admin)).json()
    assert got["status"] == "CANCELLED"
    assert (got["needsAttention"], got["attentionReason"]) == (True, "CANCELLED")
    assert [r["outcome"] for r in got["receipts"]] == ["CANCELLED"]
