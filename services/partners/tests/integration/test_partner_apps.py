"""Partner apps and their keys on the real store and broker: a key shown once and kept
hashed, rotation and revocation as the gateway's key resolution sees them, ADMIN only."""

from __future__ import annotations

import hashlib
import re

import pytest

from gala.contracts.partners import PARTNER_APP_TOPIC
from gala.identity import Role
from gala.testing import TopicTail
from services.partners.tests.integration.conftest import Partners

pytestmark = pytest.mark.asyncio(loop_scope="session")

APPS = "/api/v1/partners/apps"
KEY = re.compile(r"^gala_pk_[A-Za-z0-9_-]{43}$")


def hashed(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def owner(partners: Partners, key: str) -> tuple[int, dict]:
    response = await partners.client.get(
        f"/internal/v1/partner-keys/{hashed(key)}", headers=partners.service_headers()
    )
    return response.status_code, response.json()


async def test_an_admin_creates_an_app_whose_key_is_shown_once_and_kept_hashed(
    partners: Partners, infra
) -> None:
    tail = TopicTail(infra.kafka_bootstrap, PARTNER_APP_TOPIC)
    await tail.start()
    try:
        venue, admin = partners.new_venue()
        created = await partners.call(
            "POST", APPS, admin, {"name": " ERP  sync ", "description": "x"}
        )
        assert created.status_code == 201, created.text
        app = created.json()
        assert KEY.match(app["apiKey"])
        assert app["name"] == "ERP sync" and app["venueId"] == venue and app["active"]
        assert app["apiKey"].startswith(app["keyPrefix"])

        shown = await partners.call("GET", f"{APPS}/{app['id']}", admin)
        assert shown.status_code == 200 and "apiKey" not in shown.json()
        listed = await partners.call("GET", APPS, admin)
        assert [a["id"] for a in listed.json()["items"]] == [app["id"]]
        stored = await partners.runtime.store["partner_apps"].find_one({"_id": app["id"]})
        assert app["apiKey"] not in str(stored) and stored["keyHash"] == hashed(app["apiKey"])

        assert await owner(partners, app["apiKey"]) == (
            200,
            {"appId": app["id"], "venueId": venue, "active": True},
        )
        ((_, event),) = await tail.wait_for(app["id"], 1)
        assert event.type == "gala.partner_app.created.v1" and event.venueid == venue
        assert app["apiKey"] not in event.data.decode()
        assert hashed(app["apiKey"]) not in event.data.decode()
    finally:
        await tail.stop()


async def test_rotation_replaces_the_key_and_revocation_ends_it(partners: Partners) -> None:
    _, admin = partners.new_venue()
    app = (await partners.call("POST", APPS, admin, {"name": "CRM"})).json()
    rotated = await partners.call("POST", f"{APPS}/{app['id']}/keys/rotate", admin)
    assert rotated.status_code == 200, rotated.text
    new_key = rotated.json()["apiKey"]
    assert KEY.match(new_key) and new_key != app["apiKey"]
    assert (await owner(partners, app["apiKey"]))[0] == 404
    assert (await owner(partners, new_key))[1]["active"] is True

    revoked = await partners.call("POST", f"{APPS}/{app['id']}/revoke", admin)
    assert revoked.status_code == 200 and revoked.json()["active"] is False
    assert (await owner(partners, new_key))[1]["active"] is False
    again = await partners.call("POST", f"{APPS}/{app['id']}/keys/rotate", admin)
    assert again.status_code == 409, again.text


async def test_only_the_venues_admin_manages_apps(partners: Partners) -> None:
    venue, admin = partners.new_venue()
    app = (await partners.call("POST", APPS, admin, {"name": "CRM"})).json()
    for role in (Role.SALES, Role.PROJECT_MANAGER, Role.STAFF, Role.CLIENT, Role.PARTNER):
        member = partners.member(venue, role)
        assert (await partners.call("GET", APPS, member)).status_code == 403
        assert (await partners.call("POST", APPS, member, {"name": "x"})).status_code == 403
        rotate = await partners.call("POST", f"{APPS}/{app['id']}/keys/rotate", member)
        assert rotate.status_code == 403
    _, stranger = partners.new_venue()
    assert (await partners.call("GET", f"{APPS}/{app['id']}", stranger)).status_code == 404
    revoke = await partners.call("POST", f"{APPS}/{app['id']}/revoke", stranger)
    assert revoke.status_code == 404


async def test_bad_input_is_422_and_the_key_lookup_is_for_services_only(partners: Partners) -> None:
    _, admin = partners.new_venue()
    for body in ({"name": ""}, {"name": "   "}, {}, {"name": "x", "extra": 1}):
        response = await partners.call("POST", APPS, admin, body)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
    as_user = await partners.client.get(
        f"/internal/v1/partner-keys/{'0' * 64}", headers=partners.headers(admin)
    )
    assert as_user.status_code == 401
    malformed = await partners.client.get(
        f"/internal/v1/partner-keys/{'Z' * 64}", headers=partners.service_headers()
    )
    assert malformed.status_code == 422
