"""A won opportunity's payment schedule: made once, exact, by the venue's policy."""

import asyncio
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from gala.contracts.projects import ProjectCreated
from gala.identity import Role
from gala.testing import eventually

pytestmark = pytest.mark.asyncio(loop_scope="session")

EVENT_DATE = datetime(2027, 6, 12, 15, 0, tzinfo=UTC)
WON_AT = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_a_won_event_delivered_three_times_makes_one_exact_schedule(billing, payment_events):
    venue, admin = billing.new_venue()
    won = billing.won_event(venue)
    for delivery in ("a", "a", "b"):  # a redelivery, and the same event by another path
        await billing.publish(won, won.opportunity_id, f"{won.opportunity_id}-{delivery}")
    payments = await billing.schedule_of(venue, won.opportunity_id)
    await asyncio.sleep(1.5)
    again = await billing.call("GET", "/api/v1/payments", admin, opportunityId=won.opportunity_id)
    assert again.json()["items"] == payments

    deposit, balance = payments
    assert (deposit["kind"], deposit["amount"], deposit["currency"]) == ("DEPOSIT", "300.00", "EUR")
    assert (balance["kind"], balance["amount"]) == ("BALANCE", "700.01")
    assert Decimal(deposit["amount"]) + Decimal(balance["amount"]) == Decimal("1000.01")
    assert at(deposit["dueDate"]) == WON_AT + timedelta(days=7)
    assert at(balance["dueDate"]) == EVENT_DATE - timedelta(days=14)
    assert {p["status"] for p in payments} == {"PENDING"}
    assert {p["contactId"] for p in payments} == {won.contact_id}

    for payment in payments:
        events = await payment_events.wait_for(payment["id"], 1)
        _, envelope = events[0]
        assert envelope.type == "gala.payment.scheduled.v1"
        data = json.loads(envelope.data)
        assert data["amount"] == payment["amount"] and data["kind"] == payment["kind"]
    await asyncio.sleep(1)
    assert all(len(payment_events.distinct(p["id"])) == 1 for p in payments)


@pytest.mark.parametrize(
    ("value", "currency", "deposit", "balance"),
    [
        ("0.01", "EUR", None, "0.01"),
        ("333", "JPY", "100", "233"),
        ("10.005", "KWD", "3.002", "7.003"),
    ],
)
async def test_awkward_amounts_never_lose_or_invent_a_unit(
    billing, value, currency, deposit, balance
):
    venue, _ = billing.new_venue()
    expected = [amount for amount in (deposit, balance) if amount is not None]
    _, payments = (
        await billing.win(venue, value=Decimal(value), currency=currency)
        if len(expected) == 2
        else await _win_one(billing, venue, value, currency)
    )
    assert [p["amount"] for p in payments] == expected
    assert sum(Decimal(p["amount"]) for p in payments) == Decimal(value)


async def _win_one(billing, venue, value, currency):
    event = billing.won_event(venue, value=Decimal(value), currency=currency)
    await billing.publish(event, event.opportunity_id)
    return event, await billing.schedule_of(venue, event.opportunity_id, count=1)


async def test_the_venue_policy_decides_and_only_an_admin_changes_it(billing):
    venue, admin = billing.new_venue()
    default = (await billing.call("GET", "/api/v1/billing/policy", admin)).json()
    assert default == {
        "depositPercent": "30",
        "depositDueDaysAfterWin": 7,
        "balanceDueDaysBeforeEvent": 14,
        "updatedAt": None,
    }
    policy = {"depositPercent": "50", "depositDueDaysAfterWin": 3, "balanceDueDaysBeforeEvent": 30}
    sales = billing.member(venue, Role.SALES)
    assert (await billing.call("PUT", "/api/v1/billing/policy", sales, policy)).status_code == 403
    for bad in ({**policy, "depositPercent": "101"}, {**policy, "depositPercent": 50},
                {**policy, "balanceDueDaysBeforeEvent": -1}, {**policy, "extra": 1}):  # fmt: skip
        refused = await billing.call("PUT", "/api/v1/billing/policy", admin, bad)
        assert refused.status_code == 422, bad
    put = await billing.call("PUT", "/api/v1/billing/policy", admin, policy)
    assert put.status_code == 200 and put.json()["depositPercent"] == "50"

    _, payments = await billing.win(venue, value=Decimal("999.99"))
    assert [p["amount"] for p in payments] == ["500.00", "499.99"]
    assert at(payments[0]["dueDate"]) == WON_AT + timedelta(days=3)
    assert at(payments[1]["dueDate"]) == EVENT_DATE - timedelta(days=30)
    # an event too soon for the policy: the balance is due with the deposit, not before
    soon = WON_AT + timedelta(days=10)
    _, close = await billing.win(venue, event_date=soon)
    assert at(close[0]["dueDate"]) == at(close[1]["dueDate"]) == WON_AT + timedelta(days=3)


async def test_a_lost_opportunity_cancels_unpaid_installments_and_keeps_paid_ones(
    billing, payment_events
):
    venue, admin = billing.new_venue()
    won, (deposit, balance) = await billing.win(venue)
    paid = await billing.call(
        "POST",
        f"/api/v1/payments/{deposit['id']}/record",
        admin,
        {"paymentMethod": "bank transfer", "reference": "TX-1"},
        headers={"Idempotency-Key": "k-1"},
    )
    assert paid.status_code == 200
    lost = billing.lost_event(won)
    for _ in range(2):
        await billing.publish(lost, won.opportunity_id, f"lost-{won.opportunity_id}")

    async def cancelled():
        got = (await billing.call("GET", f"/api/v1/payments/{balance['id']}", admin)).json()
        return got if got["status"] == "CANCELLED" else None

    got = await eventually(cancelled)
    assert got["cancelledAt"] is not None
    kept = (await billing.call("GET", f"/api/v1/payments/{deposit['id']}", admin)).json()
    assert kept["status"] == "PAID"
    types = await payment_events.distinct_types(balance["id"], 2)
    assert types == ["gala.payment.scheduled.v1", "gala.payment.cancelled.v1"]


async def test_a_client_sees_only_the_payments_of_their_own_projects(billing):
    venue, admin = billing.new_venue()
    client = billing.member(venue, Role.CLIENT)
    mine, my_payments = await billing.win(venue)
    _, other_payments = await billing.win(venue)
    project = ProjectCreated(
        project_id="project-" + mine.opportunity_id,
        venue_id=venue,
        opportunity_id=mine.opportunity_id,
        name="Smith wedding",
        status="ACTIVE",
        start_date=EVENT_DATE,
        end_date=EVENT_DATE + timedelta(hours=12),
        client_ids=[client.user_id],
    )
    await billing.publish(project, project.project_id)

    async def visible():
        items = (await billing.call("GET", "/api/v1/payments", client)).json()["items"]
        return items if len(items) == 2 and all(p["projectId"] for p in items) else None

    items = await eventually(visible)
    assert sorted(p["id"] for p in items) == sorted(p["id"] for p in my_payments)
    assert {p["projectId"] for p in items} == {project.project_id}
    by_project = await billing.call("GET", "/api/v1/payments", admin, projectId=project.project_id)
    assert len(by_project.json()["items"]) == 2
    hidden = await billing.call("GET", f"/api/v1/payments/{other_payments[0]['id']}", client)
    assert hidden.status_code == 404
    refused = await billing.call(
        "POST",
        f"/api/v1/payments/{my_payments[0]['id']}/record",
        client,
        {"paymentMethod": "cash"},
        headers={"Idempotency-Key": "c-1"},
    )
    assert refused.status_code == 403
    staff = billing.member(venue, Role.STAFF)
    assert (await billing.call("GET", "/api/v1/payments", staff)).status_code == 403
