"""Staff work on payments: record (idempotently), change, add, list."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from gala.identity import Role

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def record(billing, who, payment_id, key, method="bank transfer"):
    headers = {"Idempotency-Key": key} if key is not None else {}
    return await billing.call(
        "POST",
        f"/api/v1/payments/{payment_id}/record",
        who,
        {"paymentMethod": method, "reference": "TX-42"},
        headers=headers,
    )


async def test_recording_is_idempotent_by_its_key(billing, payment_events):
    venue, admin = billing.new_venue()
    _, (deposit, _) = await billing.win(venue)
    assert (await record(billing, admin, deposit["id"], None)).status_code == 422
    first = await record(billing, admin, deposit["id"], "key-1")
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["status"] == "PAID" and body["paymentMethod"] == "bank transfer"
    assert body["reference"] == "TX-42" and body["paidAt"] is not None
    again = await record(billing, admin, deposit["id"], "key-1")
    assert again.status_code == 200 and again.json() == body
    other = await record(billing, admin, deposit["id"], "key-2")
    assert other.status_code == 409
    assert other.headers["content-type"].startswith("application/problem+json")
    types = await payment_events.types(deposit["id"], 2)
    assert types == ["gala.payment.scheduled.v1", "gala.payment.paid.v1"]
    await asyncio.sleep(1)
    assert len(payment_events.of(deposit["id"])) == 2
    sales = billing.member(venue, Role.SALES)
    pm = billing.member(venue, Role.PROJECT_MANAGER)
    assert (await record(billing, pm, deposit["id"], "key-3")).status_code == 403
    assert (await billing.call("GET", f"/api/v1/payments/{deposit['id']}", pm)).status_code == 200
    assert (await record(billing, sales, deposit["id"], "key-1")).status_code == 200


async def test_status_follows_its_transitions_and_anything_else_is_409(billing):
    venue, admin = billing.new_venue()
    _, (deposit, balance) = await billing.win(venue)
    path = f"/api/v1/payments/{deposit['id']}"
    overdue = await billing.call("PATCH", path, admin, {"status": "OVERDUE"})
    assert overdue.status_code == 200 and overdue.json()["status"] == "OVERDUE"
    assert (await billing.call("PATCH", path, admin, {"status": "PENDING"})).status_code == 409
    paid = await billing.call("PATCH", path, admin, {"status": "PAID", "paymentMethod": "cash"})
    assert paid.status_code == 200 and paid.json()["paymentMethod"] == "cash"
    for body in ({"status": "CANCELLED"}, {"status": "PENDING"}, {"amount": "1.00"}):
        assert (await billing.call("PATCH", path, admin, body)).status_code == 409, body
    other = f"/api/v1/payments/{balance['id']}"
    assert (await billing.call("PATCH", other, admin, {"status": "CANCELLED"})).status_code == 200
    assert (await billing.call("PATCH", other, admin, {"status": "PAID"})).status_code == 409
    assert (await record(billing, admin, balance["id"], "late")).status_code == 409


async def test_an_unpaid_installment_changes_amount_and_due_date_exactly(billing):
    venue, admin = billing.new_venue()
    _, (deposit, _) = await billing.win(venue)
    path = f"/api/v1/payments/{deposit['id']}"
    due = datetime(2026, 12, 24, 12, 0, tzinfo=UTC)
    changed = await billing.call(
        "PATCH", path, admin, {"amount": "250.5", "dueDate": due.isoformat()}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["amount"] == "250.50"
    assert datetime.fromisoformat(changed.json()["dueDate"]) == due
    for body in ({"amount": "1.001"}, {"amount": "0"}, {"amount": 12.5}, {"amount": None},
                 {"dueDate": "soon"}, {"status": "LATE"}):  # fmt: skip
        refused = await billing.call("PATCH", path, admin, body)
        assert refused.status_code == 422, body
    assert (await billing.call("GET", path, admin)).json()["amount"] == "250.50"


async def test_an_extra_installment_belongs_to_a_won_opportunity(billing):
    venue, admin = billing.new_venue()
    won, _ = await billing.win(venue, currency="GBP")
    due = (datetime.now(UTC) + timedelta(days=20)).isoformat()
    body = {"opportunityId": won.opportunity_id, "amount": "120.00", "dueDate": due}
    created = await billing.call("POST", "/api/v1/payments", admin, body)
    assert created.status_code == 201, created.text
    extra = created.json()
    assert extra["kind"] == "EXTRA" and extra["currency"] == "GBP" and extra["amount"] == "120.00"
    assert created.headers["location"] == f"/api/v1/payments/{extra['id']}"
    unknown = await billing.call("POST", "/api/v1/payments", admin, {**body, "opportunityId": "x"})
    assert unknown.status_code == 422
    _, stranger = billing.new_venue()
    assert (await billing.call("POST", "/api/v1/payments", stranger, body)).status_code == 422
    bad = await billing.call("POST", "/api/v1/payments", admin, {**body, "amount": "1.234"})
    assert bad.status_code == 422
    pm = billing.member(venue, Role.PROJECT_MANAGER)
    assert (await billing.call("POST", "/api/v1/payments", pm, body)).status_code == 403


async def test_listing_filters_by_status_and_due_date_and_pages(billing):
    venue, admin = billing.new_venue()
    for _ in range(3):
        await billing.win(venue)
    seen, cursor = [], None
    while True:
        params = {"limit": 4, **({"cursor": cursor} if cursor else {})}
        page = (await billing.call("GET", "/api/v1/payments", admin, **params)).json()
        seen += page["items"]
        cursor = page["nextCursor"]
        if not cursor:
            break
    assert len(seen) == 6 and len({p["id"] for p in seen}) == 6
    assert [p["dueDate"] for p in seen] == sorted(p["dueDate"] for p in seen)
    deposits = await billing.call(
        "GET", "/api/v1/payments", admin, dueTo="2027-01-01T00:00:00Z", status="PENDING"
    )
    assert {p["kind"] for p in deposits.json()["items"]} == {"DEPOSIT"}
    assert len(deposits.json()["items"]) == 3
    _, other = billing.new_venue()
    assert (await billing.call("GET", "/api/v1/payments", other)).json()["items"] == []
