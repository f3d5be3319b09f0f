"""Website lead intake (POST /api/v1/intake/{venueKey}) and venue keys, on the real store."""

import asyncio
import itertools
import json
import logging
from datetime import UTC, datetime

import pytest
from openapi_spec_validator import validate

from contacts.intake.repository import RATE_WINDOWS
from contacts.settings import contacts_settings
from gala.identity import Role

PROBLEM = "application/problem+json"
FORM = "application/x-www-form-urlencoded"
_addresses = itertools.count(1)


def new_address() -> str:
    """A client address no other test uses."""
    n = next(_addresses)
    return f"198.51.{n // 250}.{n % 250 + 1}"


def assert_problem(response, status, type_=None):
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    if type_:
        assert body["type"] == f"urn:gala:problem:{type_}"
    return body


async def intake_key(contacts, admin) -> str:
    response = await contacts.client.get(
        "/api/v1/contacts/intake-key", headers=contacts.headers(admin)
    )
    assert response.status_code == 200, response.text
    return response.json()["key"]


async def submit(contacts, key, fields, *, form=False, address=None, headers=None):
    if form:
        body = "&".join(f"{k}={v}" for k, v in fields.items())
        content = {"content": body, "headers": {"content-type": FORM}}
    else:
        content = {"json": fields, "headers": {}}
    content["headers"] |= {"X-Forwarded-For": address or new_address(), **(headers or {})}
    return await contacts.client.post(f"/api/v1/intake/{key}", **content)


async def venue_contacts(contacts, admin) -> list[dict]:
    response = await contacts.client.get(
        "/api/v1/contacts?limit=200", headers=contacts.headers(admin)
    )
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def new_form(contacts):
    _, admin = await contacts.new_venue()
    return admin, await intake_key(contacts, admin)


# --- venue keys ------------------------------------------------------------------------


async def test_an_admin_gets_one_key_until_rotating_it(contacts):
    venue, admin = await contacts.new_venue()
    headers = contacts.headers(admin)
    first = await contacts.client.get("/api/v1/contacts/intake-key", headers=headers)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["venueId"] == venue
    assert len(body["key"]) >= 22  # at least 128 random bits, URL-safe
    assert body["path"] == f"/api/v1/intake/{body['key']}"
    assert body["rotatedAt"] is None
    again = await contacts.client.get("/api/v1/contacts/intake-key", headers=headers)
    assert again.json() == body

    rotated = await contacts.client.post("/api/v1/contacts/intake-key/rotate", headers=headers)
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["key"] != body["key"]
    assert rotated.json()["rotatedAt"] is not None
    assert (await intake_key(contacts, admin)) == rotated.json()["key"]

    _, other_admin = await contacts.new_venue()
    assert await intake_key(contacts, other_admin) not in {body["key"], rotated.json()["key"]}


async def test_concurrent_first_reads_make_one_key(contacts):
    _, admin = await contacts.new_venue()
    keys = await asyncio.gather(*(intake_key(contacts, admin) for _ in range(5)))
    assert len(set(keys)) == 1


@pytest.mark.parametrize("role", [Role.SALES, Role.PROJECT_MANAGER, Role.STAFF, Role.CLIENT])
async def test_only_an_admin_manages_the_intake(contacts, role):
    _, admin = await contacts.new_venue()
    _, someone = await contacts.add_user(admin, role)
    headers = contacts.headers(someone)
    for method, path, body in (
        ("GET", "/api/v1/contacts/intake-key", None),
        ("POST", "/api/v1/contacts/intake-key/rotate", None),
        ("GET", "/api/v1/contacts/intake-meta-pages", None),
        ("PUT", "/api/v1/contacts/intake-meta-pages", {"pages": [{"pageId": "1"}]}),
    ):
        response = await contacts.client.request(method, path, json=body, headers=headers)
        assert_problem(response, 403, "forbidden")
        anonymous = await contacts.client.request(method, path, json=body)
        assert_problem(anonymous, 401, "unauthorized")


# --- submissions -----------------------------------------------------------------------


async def timeline_of(contacts, admin, contact_id) -> list[dict]:
    response = await contacts.client.get(
        f"/api/v1/contacts/{contact_id}/timeline", headers=contacts.headers(admin)
    )
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def test_a_json_form_creates_the_contact(contacts):
    admin, key = await new_form(contacts)
    created = await submit(
        contacts,
        key,
        {"name": "Ana Pérez", "email": "Ana@Example.com", "message": "A wedding in June?"},
    )
    assert created.status_code == 202, created.text
    assert created.json() == {"status": "accepted"}
    (contact,) = await venue_contacts(contacts, admin)
    assert (contact["name"], contact["email"], contact["leadSource"], contact["phone"]) == (
        "Ana Pérez",
        "ana@example.com",
        "WEBSITE",
        None,
    )
    assert contact["customFields"] == {"message": "A wedding in June?"}


async def test_a_returning_lead_is_a_new_inquiry_and_never_rewrites_the_contact(contacts, caplog):
    caplog.set_level(logging.INFO, logger="contacts.intake.service")
    admin, key = await new_form(contacts)
    first = await submit(
        contacts,
        key,
        {
            "name": "Ana Pérez",
            "email": "ana@example.com",
            "phone": "+34 600 000 001",
            "message": "A wedding in June?",
        },
    )
    assert first.status_code == 202, first.text
    (contact,) = await venue_contacts(contacts, admin)

    # the same email again, form-encoded, with another name, phone, message and source
    again = await submit(
        contacts,
        key,
        {
            "name": "Ana+P%C3%A9rez+Garc%C3%ADa",
            "email": "ANA%40example.com",
            "phone": "%2B34+600+112+233",
            "message": "120+guests",
            "leadSource": "referral",
            "website": "",
        },
        form=True,
    )
    assert again.status_code == 202, again.text
    assert again.json() == {"status": "accepted"}
    (after,) = await venue_contacts(contacts, admin)
    assert after["id"] == contact["id"]
    for unchanged in ("name", "email", "phone", "leadSource", "status", "customFields"):
        assert after[unchanged] == contact[unchanged], unchanged
    assert (after["name"], after["phone"]) == ("Ana Pérez", "+34600000001")
    assert after["customFields"] == {"message": "A wedding in June?"}
    assert after["leadHeat"] > contact["leadHeat"]
    assert "inquiries" in {reason["rule"] for reason in after["heatReasons"]}

    (entry,) = [
        e
        for e in await timeline_of(contacts, admin, contact["id"])
        if e["kind"] == "contact.inquiry"
    ]
    assert entry["details"] == {
        "name": "Ana Pérez García",
        "email": "ana@example.com",
        "phone": "+34600112233",
        "message": "120 guests",
        "leadSource": "REFERRAL",
    }

    # each inquiry counts, up to the rule's cap
    third = await submit(contacts, key, {"name": "A. P.", "email": "ana@example.com"})
    assert third.status_code == 202, third.text
    (latest,) = await venue_contacts(contacts, admin)
    assert latest["leadHeat"] > after["leadHeat"]
    assert latest["name"] == "Ana Pérez"
    inquiries = [
        e
        for e in await timeline_of(contacts, admin, contact["id"])
        if e["kind"] == "contact.inquiry"
    ]
    assert len(inquiries) == 2

    # logged with keys logging does not reserve (a `created` key once made this a 500)
    records = [r for r in caplog.records if r.getMessage() == "website lead"]
    assert [(r.contact_id, r.new_contact) for r in records] == [
        (contact["id"], True),
        (contact["id"], False),
        (contact["id"], False),
    ]
    assert not any(hasattr(r, "extra_created") for r in records)


async def test_concurrent_returns_of_one_lead_count_every_inquiry(contacts):
    admin, key = await new_form(contacts)
    assert (
        await submit(contacts, key, {"name": "Lu", "email": "lu@example.com"})
    ).status_code == 202
    (contact,) = await venue_contacts(contacts, admin)
    answers = await asyncio.gather(
        *(submit(contacts, key, {"name": f"Lu {n}", "email": "lu@example.com"}) for n in range(3))
    )
    assert [a.status_code for a in answers] == [202, 202, 202]
    (after,) = await venue_contacts(contacts, admin)
    assert after["name"] == "Lu"
    reasons = {r["rule"]: r for r in after["heatReasons"]}
    assert reasons["inquiries"]["detail"] == "3 new inquiry(ies)"
    assert after["leadHeat"] == contact["leadHeat"] + reasons["inquiries"]["points"]


async def test_the_form_names_its_lead_source(contacts):
    admin, key = await new_form(contacts)
    response = await submit(
        contacts, key, {"name": "Rui", "email": "rui@example.com", "leadSource": "referral"}
    )
    assert response.status_code == 202, response.text
    form = await submit(
        contacts, key, {"name": "Eva", "email": "eva@example.com", "leadSource": ""}, form=True
    )
    assert form.status_code == 202, form.text
    sources = {c["email"]: c["leadSource"] for c in await venue_contacts(contacts, admin)}
    assert sources == {"rui@example.com": "REFERRAL", "eva@example.com": "WEBSITE"}


async def test_a_returning_leads_message_goes_to_the_timeline_not_the_custom_fields(contacts):
    admin, key = await new_form(contacts)
    assert (await submit(contacts, key, {"name": "Lia", "email": "lia@example.com"})).status_code
    (contact,) = await venue_contacts(contacts, admin)
    patched = await contacts.client.patch(
        f"/api/v1/contacts/{contact['id']}",
        json={"customFields": {"budget": "10k"}},
        headers=contacts.headers(admin),
    )
    assert patched.status_code == 200, patched.text
    again = await submit(
        contacts, key, {"name": "Lia", "email": "lia@example.com", "message": "Call me"}
    )
    assert again.status_code == 202
    (after,) = await venue_contacts(contacts, admin)
    assert after["customFields"] == {"budget": "10k"}
    messages = [
        e["details"]["message"]
        for e in await timeline_of(contacts, admin, contact["id"])
        if e["kind"] == "contact.inquiry"
    ]
    assert messages == ["Call me"]


@pytest.mark.parametrize("form", [False, True])
async def test_a_filled_honeypot_is_answered_as_a_success_and_stores_nothing(contacts, form):
    admin, key = await new_form(contacts)
    human = await submit(contacts, key, {"name": "Ana", "email": "ana@example.com"}, form=form)
    for fields in (
        {"name": "Bot", "email": "bot@example.com", "website": "http://spam.example"},
        {"name": "Bot", "email": "not-an-email", "website": "x"},  # no 422 to learn from
    ):
        bot = await submit(contacts, key, fields, form=form)
        assert (
            (bot.status_code, bot.json())
            == (human.status_code, human.json())
            == (
                202,
                {"status": "accepted"},
            )
        )
    assert [c["email"] for c in await venue_contacts(contacts, admin)] == ["ana@example.com"]


async def test_an_unknown_key_is_404(contacts):
    for key in ("x" * 32, "short", "not a key at all"):
        response = await submit(contacts, key, {"name": "Ana", "email": "ana@example.com"})
        assert_problem(response, 404, "not-found")


async def test_a_rotated_key_stops_working_at_once(contacts):
    admin, old = await new_form(contacts)
    rotated = await contacts.client.post(
        "/api/v1/contacts/intake-key/rotate", headers=contacts.headers(admin)
    )
    new = rotated.json()["key"]
    assert_problem(await submit(contacts, old, {"name": "A", "email": "a@example.com"}), 404)
    ok = await submit(contacts, new, {"name": "B", "email": "b@example.com"})
    assert ok.status_code == 202, ok.text
    assert [c["email"] for c in await venue_contacts(contacts, admin)] == ["b@example.com"]


@pytest.mark.parametrize(
    "fields",
    [
        {"name": "Ana", "email": "not-an-email"},
        {"name": "Ana"},
        {"email": "ana@example.com"},
        {"name": "", "email": "ana@example.com"},
        {"name": "Ana", "email": "ana@example.com", "phone": "call me"},
        {"name": "Ana", "email": "ana@example.com", "leadSource": "PIGEON"},
        {"name": "Ana", "email": "ana@example.com", "company": "unknown field"},
        {"name": "Ana", "email": ["ana@example.com"]},
    ],
)
async def test_invalid_input_is_422_and_stores_nothing(contacts, fields):
    admin, key = await new_form(contacts)
    assert_problem(await submit(contacts, key, fields), 422, "invalid-input")
    assert await venue_contacts(contacts, admin) == []


async def test_bodies_that_cannot_be_read_change_nothing(contacts):
    admin, key = await new_form(contacts)
    path = f"/api/v1/intake/{key}"
    not_json = await contacts.client.post(
        path, content=b"{nope", headers={"content-type": "application/json"}
    )
    assert_problem(not_json, 422, "invalid-input")
    plain = await contacts.client.post(
        path, content=b"name=a", headers={"content-type": "text/plain"}
    )
    assert_problem(plain, 415)
    big = json.dumps({"name": "Ana", "email": "a@example.com", "message": "m" * 70_000})
    too_large = await contacts.client.post(
        path, content=big, headers={"content-type": "application/json"}
    )
    assert_problem(too_large, 413)
    assert await venue_contacts(contacts, admin) == []


# --- rate limit ------------------------------------------------------------------------


async def _not_near_a_minute_boundary() -> None:
    now = datetime.now(UTC)
    if now.second >= 50:
        await asyncio.sleep(60.5 - now.second - now.microsecond / 1e6)


def rate_limit(contacts) -> int:
    return contacts_settings(contacts.runtime.settings).intake_rate_limit_per_minute


async def test_one_address_is_limited_per_minute_and_others_are_not(contacts):
    admin, key = await new_form(contacts)
    _, other_key = await new_form(contacts)
    await _not_near_a_minute_boundary()
    address = new_address()
    limit = rate_limit(contacts)
    for n in range(limit):
        response = await submit(
            contacts, key, {"name": "Ana", "email": f"a{n}@example.com"}, address=address
        )
        assert response.status_code == 202, (n, response.text)
    limited = await submit(
        contacts, key, {"name": "Ana", "email": "over@example.com"}, address=address
    )
    body = assert_problem(limited, 429, "too-many-requests")
    retry_after = int(limited.headers["retry-after"])
    assert 1 <= retry_after <= 60
    assert body["retryAfter"] == retry_after
    # a caller cannot escape by claiming another address before the gateway's hop
    spoofed = await submit(
        contacts,
        key,
        {"name": "Ana", "email": "spoof@example.com"},
        address=f"192.0.2.77, {address}",
    )
    assert_problem(spoofed, 429)
    # a bot's honeypot submissions count too, and are refused the same
    bot = await submit(
        contacts, key, {"name": "B", "email": "b@x.example", "website": "x"}, address=address
    )
    assert_problem(bot, 429)

    another = await submit(contacts, key, {"name": "Eva", "email": "eva@example.com"})
    assert another.status_code == 202, another.text
    elsewhere = await submit(
        contacts, other_key, {"name": "Ana", "email": "a@example.com"}, address=address
    )
    assert elsewhere.status_code == 202, elsewhere.text

    emails = {c["email"] for c in await venue_contacts(contacts, admin)}
    assert emails == {f"a{n}@example.com" for n in range(limit)} | {"eva@example.com"}


async def test_concurrent_submissions_from_one_address_are_all_counted(contacts):
    admin, key = await new_form(contacts)
    await _not_near_a_minute_boundary()
    address = new_address()
    responses = await asyncio.gather(
        *(
            submit(contacts, key, {"name": "Ana", "email": f"c{n}@example.com"}, address=address)
            for n in range(15)
        )
    )
    limit = rate_limit(contacts)
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [202] * limit + [429] * (15 - limit), [r.text for r in responses]
    assert len(await venue_contacts(contacts, admin)) == limit


async def test_ended_windows_are_swept_by_a_later_window(contacts):
    _, key = await new_form(contacts)
    windows = contacts.app.state.runtime.store[RATE_WINDOWS]
    await windows.insert_one(
        {"_id": "old|203.0.113.1|1", "count": 3, "endsAt": datetime(2020, 1, 1, tzinfo=UTC)}
    )
    response = await submit(contacts, key, {"name": "Ana", "email": "sweep@example.com"})
    assert response.status_code == 202
    assert await windows.find_one({"_id": "old|203.0.113.1|1"}) is None
    assert await windows.count_documents({"endsAt": {"$lte": datetime.now(UTC)}}) == 0


# --- the API description -----------------------------------------------------------------


async def test_the_openapi_document_is_valid_and_describes_both_media_types(contacts):
    document = contacts.app.openapi()
    validate(document)
    body = document["paths"]["/api/v1/intake/{venue_key}"]["post"]["requestBody"]["content"]
    assert set(body) == {"application/json", FORM}
    assert "/api/v1/contacts/intake-key" in document["paths"]
