"""PARTNER is a partner app's key's role, never a person's: the users API refuses it
(create, update, the internal create) and does not offer it."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.asyncio(loop_scope="session")


def assert_refused(response) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_no_user_can_be_created_or_made_a_partner(contacts) -> None:
    venue, admin = await contacts.new_venue()
    body = {"authSubject": "sub-partner", "email": "p@x.example", "role": "PARTNER"}
    assert_refused(
        await contacts.client.post("/api/v1/users", json=body, headers=contacts.headers(admin))
    )
    assert_refused(
        await contacts.client.post(
            "/internal/v1/users",
            json={**body, "venueId": venue},
            headers=contacts.service_headers("ops"),
        )
    )
    user, _ = await contacts.add_user(admin)
    changed = await contacts.client.patch(
        f"/api/v1/users/{user['id']}", json={"role": "PARTNER"}, headers=contacts.headers(admin)
    )
    assert_refused(changed)
    again = await contacts.client.get(
        f"/api/v1/users/{user['id']}", headers=contacts.headers(admin)
    )
    assert again.json()["role"] == "STAFF"


async def test_the_openapi_offers_people_roles_only(contacts) -> None:
    document = (await contacts.client.get("/openapi.json")).json()
    enums = [
        schema.get("enum")
        for schema in document["components"]["schemas"].values()
        if "ADMIN" in (schema.get("enum") or [])
    ]
    assert enums and all("PARTNER" not in values for values in enums), enums
