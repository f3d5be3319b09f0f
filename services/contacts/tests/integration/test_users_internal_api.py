"""The internal users API (/internal/v1/users): for Gala's own services, never for users."""

import uuid

import pytest

from gala.identity import IDENTITY_HEADER, Principal, Role

PROBLEM = "application/problem+json"
REF_FIELDS = {"id", "authSubject", "venueId", "role", "active", "email", "name"}


def new_subject() -> str:
    return f"sub-{uuid.uuid4().hex}"


async def test_by_subject_answers_who_the_user_is(contacts):
    _, admin = await contacts.new_venue()
    user, _ = await contacts.add_user(admin, Role.SALES, name="Sal")
    response = await contacts.client.get(
        f"/internal/v1/users/by-subject/{user['authSubject']}",
        headers=contacts.service_headers("gateway"),
    )
    assert response.status_code == 200
    assert response.json() == {
        "id": user["id"],
        "authSubject": user["authSubject"],
        "venueId": admin.venue_id,
        "role": "SALES",
        "active": True,
        "email": user["email"],
        "name": "Sal",
    }


async def test_by_subject_shows_a_deactivated_user_as_inactive(contacts):
    _, admin = await contacts.new_venue()
    user, _ = await contacts.add_user(admin)
    await contacts.client.patch(
        f"/api/v1/users/{user['id']}", json={"active": False}, headers=contacts.headers(admin)
    )
    response = await contacts.client.get(
        f"/internal/v1/users/by-subject/{user['authSubject']}", headers=contacts.service_headers()
    )
    assert response.json()["active"] is False


@pytest.mark.parametrize("subject", ["google-oauth2|1234", "https://idp.example/users/42", "a b"])
async def test_by_subject_takes_subjects_with_any_characters(contacts, subject):
    subject = f"{subject}-{uuid.uuid4().hex[:6]}"
    venue, _ = await contacts.new_venue()
    created = await contacts.client.post(
        "/internal/v1/users",
        json={"venueId": venue, "authSubject": subject, "email": "s@x.example", "role": "STAFF"},
        headers=contacts.service_headers("ops"),
    )
    assert created.status_code == 201, created.text
    path = "/internal/v1/users/by-subject/" + subject.replace("/", "%2F").replace(" ", "%20")
    response = await contacts.client.get(path, headers=contacts.service_headers())
    assert response.status_code == 200, response.text
    assert response.json()["id"] == created.json()["id"]


async def test_an_unknown_subject_is_404_problem(contacts):
    response = await contacts.client.get(
        f"/internal/v1/users/by-subject/{new_subject()}", headers=contacts.service_headers()
    )
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"] == "urn:gala:problem:not-found"


async def test_find_by_email_in_one_venue_or_all(contacts):
    _, admin_a = await contacts.new_venue()
    _, admin_b = await contacts.new_venue()
    email = f"{uuid.uuid4().hex[:8]}@both.example"
    user_a, _ = await contacts.add_user(admin_a, Role.CLIENT, email=email)
    user_b, _ = await contacts.add_user(admin_b, Role.STAFF, email=email)
    headers = contacts.service_headers("devtool")

    everywhere = await contacts.client.get(
        "/internal/v1/users", params={"email": f"  {email.upper()} "}, headers=headers
    )
    assert everywhere.status_code == 200
    items = everywhere.json()["items"]
    assert {item["id"] for item in items} == {user_a["id"], user_b["id"]}
    assert all(set(item) == REF_FIELDS for item in items)

    in_b = await contacts.client.get(
        "/internal/v1/users", params={"email": email, "venueId": admin_b.venue_id}, headers=headers
    )
    assert in_b.json() == {
        "items": [
            {
                "id": user_b["id"],
                "authSubject": user_b["authSubject"],
                "venueId": admin_b.venue_id,
                "role": "STAFF",
                "active": True,
                "email": email,
                "name": None,
            }
        ]
    }
    nobody = await contacts.client.get(
        "/internal/v1/users", params={"email": "nobody@nowhere.example"}, headers=headers
    )
    assert nobody.json() == {"items": []}


async def test_find_by_email_needs_a_valid_email(contacts):
    headers = contacts.service_headers()
    for params in ({}, {"email": "not an email"}):
        response = await contacts.client.get("/internal/v1/users", params=params, headers=headers)
        assert response.status_code == 422
        assert response.headers["content-type"] == PROBLEM


async def test_internal_create_adds_a_venues_first_admin(contacts):
    venue = f"venue-{uuid.uuid4().hex[:8]}"
    response = await contacts.client.post(
        "/internal/v1/users",
        json={
            "venueId": venue,
            "authSubject": "ops|first-admin-" + venue,
            "email": "Boss@Venue.Example",
            "name": "Boss",
            "role": "ADMIN",
        },
        headers=contacts.service_headers("ops"),
    )
    assert response.status_code == 201, response.text
    user = response.json()
    assert (user["venueId"], user["role"], user["email"], user["active"]) == (
        venue,
        "ADMIN",
        "boss@venue.example",
        True,
    )
    # the new admin can use the public API of their venue at once
    admin = Principal(user_id=user["id"], venue_id=venue, role=Role.ADMIN)
    me = await contacts.client.get("/api/v1/users/me", headers=contacts.headers(admin))
    assert me.json() == user


async def test_internal_create_conflicts_name_the_existing_user_in_any_venue(contacts):
    _, admin_a = await contacts.new_venue()
    user_a, _ = await contacts.add_user(admin_a, email="taken@people.example")
    venue_b, _ = await contacts.new_venue()
    headers = contacts.service_headers("ops")

    same_subject_elsewhere = await contacts.client.post(
        "/internal/v1/users",
        json={
            "venueId": venue_b,
            "authSubject": user_a["authSubject"],
            "email": "fresh@people.example",
            "role": "ADMIN",
        },
        headers=headers,
    )
    assert same_subject_elsewhere.status_code == 409
    assert same_subject_elsewhere.headers["content-type"] == PROBLEM
    assert same_subject_elsewhere.json()["existingId"] == user_a["id"]

    same_email = await contacts.client.post(
        "/internal/v1/users",
        json={
            "venueId": admin_a.venue_id,
            "authSubject": new_subject(),
            "email": "TAKEN@people.example",
            "role": "STAFF",
        },
        headers=headers,
    )
    assert same_email.status_code == 409
    assert same_email.json()["existingId"] == user_a["id"]


@pytest.mark.parametrize(
    "body",
    [
        {"image": "https://img.example/a.png"},
        {"active": False},
        {"venue_id": "v"},
        {"role": "OWNER"},
        {"email": "nope"},
        {"venueId": ""},
    ],
)
async def test_internal_create_refuses_bad_bodies(contacts, body):
    venue = f"venue-{uuid.uuid4().hex[:8]}"
    subject = new_subject()
    response = await contacts.client.post(
        "/internal/v1/users",
        json={
            "venueId": venue,
            "authSubject": subject,
            "email": "ok@people.example",
            "role": "STAFF",
            **body,
        },
        headers=contacts.service_headers("ops"),
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    missing = await contacts.client.get(
        f"/internal/v1/users/by-subject/{subject}", headers=contacts.service_headers()
    )
    assert missing.status_code == 404


async def test_internal_endpoints_refuse_user_tokens_and_missing_tokens(contacts):
    _, admin = await contacts.new_venue()
    user, _ = await contacts.add_user(admin)
    calls = [
        ("GET", f"/internal/v1/users/by-subject/{user['authSubject']}", None),
        ("GET", f"/internal/v1/users?email={user['email']}", None),
        (
            "POST",
            "/internal/v1/users",
            {
                "venueId": admin.venue_id,
                "authSubject": new_subject(),
                "email": "sneak@people.example",
                "role": "ADMIN",
            },
        ),
    ]
    refused = ({}, {IDENTITY_HEADER: "not.a.token"}, contacts.headers(admin))
    for headers in refused:
        for method, path, body in calls:
            response = await contacts.client.request(method, path, json=body, headers=headers)
            assert response.status_code == 401, (method, path, response.text)
            assert response.headers["content-type"] == PROBLEM
            assert response.json()["type"] == "urn:gala:problem:unauthorized"
    listed = await contacts.client.get("/api/v1/users?limit=200", headers=contacts.headers(admin))
    assert "sneak@people.example" not in {item["email"] for item in listed.json()["items"]}
