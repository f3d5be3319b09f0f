"""What Stripe says was paid is checked against the installment (against stripe-mock):
exactly the amount due, in its currency, pays it; anything else is kept as a receipt
and needs a person's attention, never PAID; sessions opened for an amount that is no
longer right are expired at Stripe."""

import json
from decimal import Decimal

import pytest

from billing.payments.repository import PaymentFilter, PaymentRepository
from gala.contracts.billing import PAYMENT_TOPIC
from gala.identity import Role
from gala.store import uses_index
from gala.testing import TopicTail, eventually

from .test_stripe_checkout import changes, client_of, minor, post_webhook, session_event, signed

pytestmark = pytest.mark.asyncio(loop_scope="session")
PAYMENTS = "/api/v1/payments"


@pytest.fixture
async def tail(billing_with_stripe, infra):
    events = TopicTail(infra.kafka_bootstrap, PAYMENT_TOPIC)
    await events.start()
    try:
        yield events
    finally:
        await events.stop()


async def deliver(billing, payload: bytes) -> None:
    answer = await post_webhook(billing, payload, signed(payload))
    assert answer.status_code == 200, answer.text


async def payment(billing, who, payment_id):
    answer = await billing.call("GET", f"{PAYMENTS}/{payment_id}", who)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def attention_ids(billing, who, **params):
    page = await billing.call("GET", PAYMENTS, who, attention="true", **params)
    assert page.status_code == 200, page.text
    return [p["id"] for p in page.json()["items"]]


async def stored_sessions(billing, payment_id):
    d = await billing.runtime.store["payments"].find_one({"_id": payment_id})
    return {s["id"]: s["state"] for s in d.get("checkoutSessions") or []}


@pytest.mark.parametrize(
    ("amount_delta", "currency", "reason"),
    [(-1, None, "UNDERPAID"), (+100, None, "OVERPAID"), (0, "USD", "CURRENCY_MISMATCH")],
)
async def test_money_that_is_not_the_amount_due_is_kept_and_needs_attention_never_paid(
    billing_with_stripe, tail, amount_delta, currency, reason
):
    billing = billing_with_stripe
    venue, admin = billing.new_venue()
    _, (deposit, balance) = await billing.win(venue)
    payload = session_event(
        deposit, amount=minor(deposit) + amount_delta, currency=currency, pi="pi_odd"
    )
    await deliver(billing, payload)
    got = await payment(billing, admin, deposit["id"])
    assert got["status"] == "PENDING" and got["paidAt"] is None
    assert (got["needsAttention"], got["attentionReason"]) == (True, reason)
    [receipt] = got["receipts"]
    assert Decimal(receipt["amount"]) == Decimal(minor(deposit) + amount_delta) / 100
    assert receipt["currency"] == (currency or "EUR")
    assert receipt["externalPaymentId"] == "pi_odd" and receipt["outcome"] == reason
    assert receipt["sessionId"].startswith("cs_test_") and receipt["receivedAt"]
    # findable, and only it
    assert await attention_ids(billing, admin) == [deposit["id"]]
    others = await billing.call("GET", PAYMENTS, admin, attention="false")
    assert [p["id"] for p in others.json()["items"]] == [balance["id"]]
    # published once, however often Stripe tells it
    await deliver(billing, payload)
    assert len((await payment(billing, admin, deposit["id"]))["receipts"]) == 1
    assert await changes(tail, deposit["id"], 1) == ["gala.payment.needs_attention.v1"]
    [envelope] = [e for e in tail.distinct(deposit["id"]) if "attention" in e.type]
    data = json.loads(envelope.data)
    assert data["reason"] == reason and data["needsAttention"] is True
    assert data["status"] == "PENDING" and data["checkoutSessionId"] == receipt["sessionId"]
    assert Decimal(data["receivedAmount"]) == Decimal(receipt["amount"])
    with pytest.raises(AssertionError):
        await changes(tail, deposit["id"], 2, timeout=2)


async def test_a_second_paid_session_for_a_paid_installment_is_a_double_payment(
    billing_with_stripe, tail
):
    billing = billing_with_stripe
    venue, admin = billing.new_venue()
    _, (deposit, _) = await billing.win(venue)
    first = session_event(deposit, pi="pi_first")
    await deliver(billing, first)
    paid = await payment(billing, admin, deposit["id"])
    assert paid["status"] == "PAID" and paid["needsAttention"] is False
    assert [r["outcome"] for r in paid["receipts"]] == [None]
    second = session_event(deposit, pi="pi_second")
    for _ in range(2):
        await deliver(billing, second)
    got = await payment(billing, admin, deposit["id"])
    assert got["status"] == "PAID" and got["externalPaymentId"] == "pi_first"
    assert got["paidAt"] == paid["paidAt"]
    assert (got["needsAttention"], got["attentionReason"]) == (True, "ALREADY_PAID")
    assert [r["externalPaymentId"] for r in got["receipts"]] == ["pi_first", "pi_second"]
    assert await attention_ids(billing, admin) == [deposit["id"]]
    types = await changes(tail, deposit["id"], 2)
    assert types == ["gala.payment.paid.v1", "gala.payment.needs_attention.v1"]
    with pytest.raises(AssertionError):
        await changes(tail, deposit["id"], 3, timeout=2)


async def test_a_person_resolves_what_needs_attention(billing_with_stripe, tail):
    billing = billing_with_stripe
    venue, admin = billing.new_venue()
    won, (deposit, _) = await billing.win(venue)
    await deliver(billing, session_event(deposit, amount=minor(deposit) - 500))
    resolve = f"{PAYMENTS}/{deposit['id']}/resolve"
    client = await client_of(billing, venue, won)
    pm = billing.member(venue, Role.PROJECT_MANAGER)
    for who in (client, pm):
        refused = await billing.call("POST", resolve, who, {"note": "done"})
        assert refused.status_code == 403, who.role
    assert (await billing.call("POST", resolve, admin, {})).status_code == 422
    assert (await billing.call("POST", resolve, admin, {"note": "  "})).status_code == 422
    done = await billing.call("POST", resolve, admin, {"note": "Asked for the 5.00 missing"})
    assert done.status_code == 200, done.text
    assert done.json()["needsAttention"] is False and done.json()["attentionReason"] is None
    assert len(done.json()["receipts"]) == 1  # the receipt stays
    assert await attention_ids(billing, admin) == []
    again = await billing.call("POST", resolve, admin, {"note": "again"})
    assert again.status_code == 200 and again.json() == done.json()
    types = await changes(tail, deposit["id"], 2)
    assert types == ["gala.payment.needs_attention.v1", "gala.payment.attention_resolved.v1"]


async def test_the_attention_filter_reads_through_an_index(billing_with_stripe):
    billing = billing_with_stripe
    venue, _ = billing.new_venue()
    _, (deposit, _) = await billing.win(venue)
    await deliver(billing, session_event(deposit, amount=1))
    repository = PaymentRepository(billing.runtime.store, billing.runtime.outbox)
    plan = await repository.explain(venue, PaymentFilter(needs_attention=True), 50, None)
    assert uses_index(plan), plan


async def test_changing_the_amount_expires_open_sessions_and_an_old_one_cannot_pay(
    billing_with_stripe, stripe_api
):
    billing = billing_with_stripe
    venue, admin = billing.new_venue()
    won, (deposit, _) = await billing.win(venue)
    client = await client_of(billing, venue, won)
    checkout = f"{PAYMENTS}/{deposit['id']}/checkout"
    opened = []
    for who in (client, admin):
        answer = await billing.call("POST", checkout, who)
        assert answer.status_code == 200, answer.text
        opened.append(answer.json()["sessionId"])
    assert len(set(opened)) == 2
    assert await stored_sessions(billing, deposit["id"]) == dict.fromkeys(opened, "OPEN")
    assert not set(opened) & set(stripe_api.expired())

    old_amount = minor(deposit)
    changed = await billing.call("PATCH", f"{PAYMENTS}/{deposit['id']}", admin, {"amount": "10.00"})
    assert changed.status_code == 200, changed.text
    assert sorted(s for s in stripe_api.expired() if s in opened) == sorted(opened)
    assert await stored_sessions(billing, deposit["id"]) == dict.fromkeys(opened, "EXPIRED")
    # a due date change leaves a new session alone
    fresh = (await billing.call("POST", checkout, client)).json()["sessionId"]
    body = {"dueDate": "2027-01-15T00:00:00Z"}
    assert (
        await billing.call("PATCH", f"{PAYMENTS}/{deposit['id']}", admin, body)
    ).status_code == 200
    assert fresh not in stripe_api.expired()
    assert (await stored_sessions(billing, deposit["id"]))[fresh] == "OPEN"

    # the payer finished an old session before it expired: the old amount is not the due one
    late = session_event(deposit, session_id=opened[0], amount=old_amount)
    await deliver(billing, late)
    got = await payment(billing, admin, deposit["id"])
    assert got["status"] == "PENDING"
    assert (got["needsAttention"], got["attentionReason"]) == (True, "OVERPAID")
    assert (await stored_sessions(billing, deposit["id"]))[opened[0]] == "COMPLETED"
    # the new session pays the new amount; paying it expires nothing it does not own
    await deliver(billing, session_event(deposit, session_id=fresh, amount=1000))
    got = await payment(billing, admin, deposit["id"])
    assert got["status"] == "PAID" and got["needsAttention"] is True  # the refund is still due
    assert [r["outcome"] for r in got["receipts"]] == ["OVERPAID", None]


async def test_paying_offline_or_cancelling_expires_the_open_sessions(
    billing_with_stripe, stripe_api
):
    billing = billing_with_stripe
    venue, admin = billing.new_venue()
    won, (deposit, balance) = await billing.win(venue)

    async def open_session(p):
        answer = await billing.call("POST", f"{PAYMENTS}/{p['id']}/checkout", admin)
        assert answer.status_code == 200, answer.text
        return answer.json()["sessionId"]

    recorded = await open_session(deposit)
    answer = await billing.call(
        "POST", f"{PAYMENTS}/{deposit['id']}/record", admin, {"paymentMethod": "cash"},
        headers={"Idempotency-Key": "cash-1"},
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert recorded in stripe_api.expired()
    assert await stored_sessions(billing, deposit["id"]) == {recorded: "EXPIRED"}

    lost = await open_session(balance)
    await billing.publish(billing.lost_event(won), won.opportunity_id)  # cancels the balance

    async def expired():
        return await stored_sessions(billing, balance["id"]) == {lost: "EXPIRED"}

    await eventually(expired, timeout=20)
    assert lost in stripe_api.expired()
    assert (await payment(billing, admin, balance["id"]))["status"] == "CANCELLED"
