"""The contacts API on the real store and broker."""

import asyncio
import uuid

import pytest

from gala.contracts.contacts import CONTACT_TOPIC
from gala.identity import Principal, Role
from gala.testing import TopicTail, eventually, unique_name

pytestmark = pytest.mark.asyncio(loop_scope="session")


def person(**fields):
    tag = uuid.uuid4().hex[:8]
    return {"name": f"Guest {tag}", "email": f"{tag}@guests.example", **fields}


async def create(contacts, principal, **fields):
    response = await contacts.client.post(
        "/api/v1/contacts", json=person(**fields), headers=contacts.headers(principal)
    )
    assert response.status_code == 201, response.text
    return response.json()


async def test_a_contact_is_created_normalised_with_explained_heat(contacts):
    _, admin = await contacts.new_venue()
    response = await contacts.client.post(
        "/api/v1/contacts",
        json={
            "name": "  Ada   Lovelace ",
            "email": " Ada@Example.COM ",
            "phone": "+44 (20) 7946-0958",
            "leadSource": "REFERRAL",
            "customFields": {"dietary.needs": "vegan", "$budget": 12000},
        },
        headers=contacts.headers(admin),
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == f"/api/v1/contacts/{body['id']}"
    assert (body["name"], body["email"], body["phone"]) == (
        "Ada Lovelace",
        "ada@example.com",
        "+442079460958",
    )
    assert body["status"] == "UNQUALIFIED"
    assert body["leadHeat"] == 25
    assert body["heatReasons"] == [{"rule": "source", "points": 25, "detail": "came from referral"}]
    assert body["customFields"] == {"dietary.needs": "vegan", "$budget": 12000}  # as given
    fetched = await contacts.client.get(
        f"/api/v1/contacts/{body['id']}", headers=contacts.headers(admin)
    )
    assert fetched.json() == body


async def test_the_same_email_in_a_venue_is_a_conflict_naming_the_contact(contacts):
    _, admin = await contacts.new_venue()
    first = await create(contacts, admin, email="twin@example.com")
    again = await contacts.client.post(
        "/api/v1/contacts",
        json=person(email=" TWIN@example.com"),
        headers=contacts.headers(admin),
    )
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert again.json()["existingId"] == first["id"]
    _, other_admin = await contacts.new_venue()
    await create(contacts, other_admin, email="twin@example.com")  # another venue: fine


@pytest.mark.parametrize(
    "body",
    [
        {"name": "X", "email": "not-an-email"},
        {"name": " ", "email": "a@example.com"},
        {"name": "X", "email": "a@example.com", "phone": "call me"},
        {"name": "X", "email": "a@example.com", "leadSource": "CARRIER_PIGEON"},
        {"name": "X", "email": "a@example.com", "favourite": "unknown field"},
        {"name": "X", "email": "a@example.com", "customFields": {"huge": "x" * 20000}},
        {"name": "X", "email": "a@example.com", "status": "LOST"},
    ],
)
async def test_bad_input_is_422_and_changes_nothing(contacts, body):
    _, admin = await contacts.new_venue()
    response = await contacts.client.post(
        "/api/v1/contacts", json=body, headers=contacts.headers(admin)
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    listing = await contacts.client.get("/api/v1/contacts", headers=contacts.headers(admin))
    assert listing.json()["items"] == []


@pytest.mark.parametrize("role", [Role.STAFF, Role.CLIENT, Role.PROJECT_MANAGER])
async def test_only_admin_and_sales_work_with_contacts(contacts, role):
    _, admin = await contacts.new_venue()
    contact = await create(contacts, admin)
    _, someone = await contacts.add_user(admin, role)
    headers = contacts.headers(someone)
    assert (await contacts.client.get("/api/v1/contacts", headers=headers)).status_code == 403
    got = await contacts.client.get(f"/api/v1/contacts/{contact['id']}", headers=headers)
    assert got.status_code == 403
    made = await contacts.client.post("/api/v1/contacts", json=person(), headers=headers)
    assert made.status_code == 403
    _, sales = await contacts.add_user(admin, Role.SALES)
    assert (
        await contacts.client.get("/api/v1/contacts", headers=contacts.headers(sales))
    ).status_code == 200


async def test_another_venue_never_sees_a_contact(contacts):
    _, admin_a = await contacts.new_venue()
    _, admin_b = await contacts.new_venue()
    contact = await create(contacts, admin_a)
    b = contacts.headers(admin_b)
    for method, body in (("GET", None), ("PATCH", {"name": "Taken"}), ("DELETE", None)):
        response = await contacts.client.request(
            method, f"/api/v1/contacts/{contact['id']}", json=body, headers=b
        )
        assert response.status_code == 404, (method, response.text)
    assert (await contacts.client.get("/api/v1/contacts", headers=b)).json()["items"] == []
    still = await contacts.client.get(
        f"/api/v1/contacts/{contact['id']}", headers=contacts.headers(admin_a)
    )
    assert still.json()["name"] == contact["name"]


async def test_listing_filters_by_status_source_heat_and_prefix(contacts):
    _, admin = await contacts.new_venue()
    headers = contacts.headers(admin)
    ada = await create(
        contacts,
        admin,
        name="Ada Lovelace",
        email="ada@x.example",
        leadSource="REFERRAL",
        status="LEAD",
    )
    await create(
        contacts, admin, name="Alan Turing", email="turing@x.example", leadSource="WEBSITE"
    )
    grace = await create(
        contacts, admin, name="Grace Hopper", email="amazing@x.example", leadSource="FACEBOOK"
    )

    async def ids(**params):
        response = await contacts.client.get("/api/v1/contacts", params=params, headers=headers)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert await ids(status="LEAD") == [ada["id"]]
    assert await ids(leadSource="FACEBOOK") == [grace["id"]]
    assert set(await ids(heatMin=15)) == {ada["id"], (await ids(leadSource="WEBSITE"))[0]}
    assert await ids(heatMax=10) == [grace["id"]]
    # a prefix of a name or of an email, case-insensitive
    assert set(await ids(q="a")) == {ada["id"], grace["id"], (await ids(q="alan"))[0]}
    assert await ids(q="AMAZ") == [grace["id"]]
    assert await ids(q="grace h") == [grace["id"]]
    by_name = await ids(sort="name")
    assert by_name[0] == ada["id"] and by_name[-1] == grace["id"]
    by_heat = await ids()  # hottest first by default
    assert by_heat[0] == ada["id"] and by_heat[-1] == grace["id"]
    assert (
        await contacts.client.get("/api/v1/contacts", params={"sort": "shoe-size"}, headers=headers)
    ).status_code == 422


async def test_pages_neither_skip_nor_repeat_while_contacts_are_added(contacts):
    _, admin = await contacts.new_venue()
    headers = contacts.headers(admin)
    originals = {(await create(contacts, admin, name=f"Guest {i:02d}"))["id"] for i in range(20)}
    seen: list[str] = []
    cursor = None
    while True:
        params = {"sort": "name", "limit": 6, **({"cursor": cursor} if cursor else {})}
        page = await contacts.client.get("/api/v1/contacts", params=params, headers=headers)
        assert page.status_code == 200, page.text
        body = page.json()
        seen += [item["id"] for item in body["items"]]
        # others keep adding contacts, before and after the cursor
        await create(contacts, admin, name=f"Guest {len(seen):02d}b")
        await create(contacts, admin, name="Aaron Early")
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)), "a contact was repeated"
    assert originals <= set(seen), "a contact was skipped"
    bad = await contacts.client.get(
        "/api/v1/contacts", params={"cursor": "not-a-cursor"}, headers=headers
    )
    assert bad.status_code == 422


async def test_the_lifecycle_refuses_jumps_except_to_an_admin(contacts):
    _, admin = await contacts.new_venue()
    _, sales = await contacts.add_user(admin, Role.SALES)
    contact = await create(contacts, admin)
    url = f"/api/v1/contacts/{contact['id']}"

    async def move(principal: Principal, status: str):
        return await contacts.client.patch(
            url, json={"status": status}, headers=contacts.headers(principal)
        )

    assert (await move(sales, "PROSPECT")).json()["status"] == "PROSPECT"
    jump = await move(sales, "CUSTOMER")
    assert jump.status_code == 409
    assert jump.json()["fromStatus"] == "PROSPECT"
    assert (await move(sales, "LOST")).json()["status"] == "LOST"
    assert (await move(sales, "LEAD")).status_code == 409
    assert (await move(admin, "LEAD")).json()["status"] == "LEAD"


async def test_erasure_forgets_the_person_and_tells_everyone(contacts, infra):
    tail = TopicTail(infra.kafka_bootstrap, CONTACT_TOPIC)
    await tail.start()
    try:
        _, admin = await contacts.new_venue()
        _, sales = await contacts.add_user(admin, Role.SALES)
        contact = await create(contacts, admin, email="forget.me@example.com", phone="+15550100")
        url = f"/api/v1/contacts/{contact['id']}"
        refused = await contacts.client.delete(url, headers=contacts.headers(sales))
        assert refused.status_code == 403
        erased = await contacts.client.delete(url, headers=contacts.headers(admin))
        assert erased.status_code == 204
        assert (await contacts.client.get(url, headers=contacts.headers(admin))).status_code == 404
        again = await contacts.client.delete(url, headers=contacts.headers(admin))
        assert again.status_code == 404
        listing = await contacts.client.get("/api/v1/contacts", headers=contacts.headers(admin))
        assert listing.json()["items"] == []

        # the tombstone holds no personal data (once the created event, which had it, is out)
        async def relayed() -> dict | None:
            stored = await contacts.runtime.store["contacts"].find_one({"_id": contact["id"]})
            return stored if not stored.get("_outboxPending") else None

        stored = await eventually(relayed)
        assert "forget.me" not in str(stored) and "5550100" not in str(stored)
        # the address can be used again
        await create(contacts, admin, email="forget.me@example.com")
        types = await tail.types(contact["id"], 2)
        assert types == ["gala.contact.created.v1", "gala.contact.erased.v1"]
        (_, envelope) = (await tail.wait_for(contact["id"], 2))[1]
        assert b"forget.me" not in envelope.data
    finally:
        await tail.stop()


async def test_concurrent_changes_of_one_contact_are_all_kept(contacts):
    _, admin = await contacts.new_venue()
    contact = await create(contacts, admin)
    url = f"/api/v1/contacts/{contact['id']}"
    fields = {f"field{i}": i for i in range(6)}

    async def set_field(name: str, value: int):
        current = await contacts.client.patch(
            url, json={"phone": f"+1555010{value:04d}"}, headers=contacts.headers(admin)
        )
        assert current.status_code == 200, current.text

    await asyncio.gather(*(set_field(n, v) for n, v in fields.items()))
    final = await contacts.client.get(url, headers=contacts.headers(admin))
    assert final.json()["phone"].startswith("+1555010")
    versions = await contacts.runtime.store["contacts"].find_one({"_id": contact["id"]})
    assert versions["version"] == 1 + len(fields)  # every change applied, none lost


async def test_unknown_contacts_are_404(contacts):
    _, admin = await contacts.new_venue()
    response = await contacts.client.get(
        f"/api/v1/contacts/{unique_name()}", headers=contacts.headers(admin)
    )
    assert response.status_code == 404
    assert response.json()["type"] == "urn:gala:problem:not-found"
