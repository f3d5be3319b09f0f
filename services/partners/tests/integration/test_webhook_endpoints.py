"""The webhook endpoints API: who may keep them, what a filter and a URL may be, and
the secret (shown on creation and rotation only)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import pytest

from gala.identity import Role
from gala.settings import Settings

from .webhooks_support import Partners, partners_with

pytestmark = pytest.mark.asyncio(loop_scope="session")
PATH = "/api/v1/partners/webhooks"
WON = "gala.opportunity.won.v1"


@pytest.fixture(scope="module")
async def partners(infra: Settings) -> AsyncIterator[Partners]:
    async with partners_with(infra) as running:
        yield running


@pytest.fixture(scope="module")
async def strict(infra: Settings) -> AsyncIterator[Partners]:
    """As outside dev mode: https only, no private targets."""
    async with partners_with(
        infra, webhook_allow_http=False, webhook_allow_private_targets=False
    ) as running:
        yield running


async def test_an_endpoint_s_life_create_list_get_update_disable_enable_delete(
    partners: Partners,
) -> None:
    _, admin = partners.new_venue()
    response = await partners.call(
        "POST",
        PATH,
        admin,
        {"url": "http://127.0.0.1:9/hook", "eventTypes": [WON, "gala.payment.*", WON]},
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert response.headers["location"] == f"{PATH}/{created['id']}"
    assert created["eventTypes"] == [WON, "gala.payment.*"]  # de-duplicated
    assert created["enabled"] is True and created["description"] == ""
    assert created["secret"].startswith("whsec_")
    assert len(base64.b64decode(created["secret"].removeprefix("whsec_"))) == 24
    endpoint_id = created["id"]

    got = (await partners.call("GET", f"{PATH}/{endpoint_id}", admin)).json()
    assert "secret" not in got and got["url"] == "http://127.0.0.1:9/hook"
    listed = (await partners.call("GET", PATH, admin)).json()
    assert [e["id"] for e in listed["items"]] == [endpoint_id]
    assert "secret" not in listed["items"][0]

    patched = await partners.call(
        "PATCH", f"{PATH}/{endpoint_id}", admin, {"description": "CRM sync"}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["description"] == "CRM sync"
    assert patched.json()["eventTypes"] == [WON, "gala.payment.*"]  # left out: kept

    disabled = await partners.call("POST", f"{PATH}/{endpoint_id}/disable", admin)
    assert disabled.json()["enabled"] is False
    assert disabled.json()["disabledReason"] == "MANUAL"
    ping = await partners.call("POST", f"{PATH}/{endpoint_id}/ping", admin)
    assert ping.status_code == 409
    enabled = await partners.call("POST", f"{PATH}/{endpoint_id}/enable", admin)
    assert enabled.json()["enabled"] is True and enabled.json()["disabledReason"] is None

    deleted = await partners.call("DELETE", f"{PATH}/{endpoint_id}", admin)
    assert deleted.status_code == 204
    assert (await partners.call("GET", f"{PATH}/{endpoint_id}", admin)).status_code == 404
    assert (await partners.call("DELETE", f"{PATH}/{endpoint_id}", admin)).status_code == 404


async def test_the_list_is_cursor_paged(partners: Partners) -> None:
    _, admin = partners.new_venue()
    made = [
        (await partners.add_endpoint(admin, f"http://127.0.0.1:9/{n}", [WON]))["id"]
        for n in range(5)
    ]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await partners.call("GET", PATH, admin, **params)).json()
        seen += [e["id"] for e in page["items"]]
        cursor = page["nextCursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(made) and len(seen) == 5


@pytest.mark.parametrize(
    ("event_types", "why"),
    [
        ([], "at least"),
        (["gala.opportunity.won.v9"], "not a published event type"),
        (["gala.nothing.*"], "not a wildcard of a published aggregate"),
        (["gala.*"], "not a wildcard"),
        (["gala.opportunity.won.*"], "not a wildcard"),
        (["gala.endpoint.disabled.v1"], "not a published event type"),
    ],
)
async def test_filters_must_name_published_types_or_aggregates(
    partners: Partners, event_types: list[str], why: str
) -> None:
    _, admin = partners.new_venue()
    body = {"url": "http://127.0.0.1:9/hook", "eventTypes": event_types}
    response = await partners.call("POST", PATH, admin, body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert why in response.text
    assert (await partners.call("GET", PATH, admin)).json()["items"] == []


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.partner.example/gala",  # not https
        "https://127.0.0.1/hook",  # loopback
        "https://localhost/hook",
        "https://[::1]/hook",
        "https://10.1.2.3/hook",  # private
        "https://192.168.1.10/hook",
        "https://169.254.169.254/latest/meta-data",  # link-local (cloud metadata)
        "https://0.0.0.0/hook",  # unspecified
        "https://224.0.0.1/hook",  # multicast
        "https://[::ffff:10.0.0.1]/hook",  # private, IPv4-mapped
        "https://user:pw@hooks.partner.example/",
        "ftp://hooks.partner.example/",
    ],
)
async def test_refused_urls_answer_422(strict: Partners, url: str) -> None:
    _, admin = strict.new_venue()
    response = await strict.call("POST", PATH, admin, {"url": url, "eventTypes": [WON]})
    assert response.status_code == 422, response.text
    assert response.json()["type"] == "urn:gala:problem:refused-url"
    assert (await strict.call("GET", PATH, admin)).json()["items"] == []


async def test_a_public_https_url_is_accepted_and_a_patch_is_checked_too(strict: Partners) -> None:
    _, admin = strict.new_venue()
    created = await strict.add_endpoint(admin, "https://hooks.partner.example/gala", [WON])
    patch = await strict.call(
        "PATCH", f"{PATH}/{created['id']}", admin, {"url": "https://10.0.0.8/hook"}
    )
    assert patch.status_code == 422
    assert (await strict.endpoint(admin, created["id"]))[
        "url"
    ] == "https://hooks.partner.example/gala"


async def test_only_a_venue_s_admins_and_partners_keep_its_endpoints(partners: Partners) -> None:
    venue, admin = partners.new_venue()
    partner = partners.member(venue, Role.PARTNER, "partner-app:abc")
    created = await partners.add_endpoint(partner, "http://127.0.0.1:9/hook", [WON])
    assert (await partners.call("GET", f"{PATH}/{created['id']}", admin)).status_code == 200
    for role in (Role.SALES, Role.PROJECT_MANAGER, Role.STAFF, Role.CLIENT):
        someone = partners.member(venue, role)
        assert (await partners.call("GET", PATH, someone)).status_code == 403
        body = {"url": "http://127.0.0.1:9/x", "eventTypes": [WON]}
        assert (await partners.call("POST", PATH, someone, body)).status_code == 403
    _, other_admin = partners.new_venue()
    for method, suffix in (("GET", ""), ("PATCH", ""), ("POST", "/disable"), ("DELETE", "")):
        body = {"description": "x"} if method == "PATCH" else None
        answer = await partners.call(method, f"{PATH}/{created['id']}{suffix}", other_admin, body)
        assert answer.status_code == 404, (method, suffix)
    assert (await partners.client.get(PATH)).status_code == 401
