"""Partner API keys through the gateway, on real sockets, with the real contacts and
partners services: accepted on partner routes only, forwarded as PARTNER of the key's
venue, rate limited per app, and refused within the cache time once revoked or rotated."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import Request

from contacts.bootstrap import service as contacts_service
from gala.app import ProcessRole, create_app
from gala.identity import IDENTITY_HEADER, InternalTokens
from gala.settings import Settings
from gala.testing import eventually, http_server, unique_name
from gateway.app import create_app as create_gateway
from gateway.settings import GatewaySettings
from gateway.tests.integration.conftest import APP_PARTY, ISSUER, SECRET, KeyRing, identity_provider
from partners.bootstrap import service as partners_service

pytestmark = pytest.mark.asyncio(loop_scope="session")

KEY_CACHE_SECONDS = 1.0
PARTNER_BURST = 8


@dataclass
class PartnerSystem:
    gateway: str
    keys: KeyRing
    venue: str

    def bearer(self, subject: str) -> dict[str, str]:
        token = self.keys.current.mint(subject, issuer=ISSUER, authorized_party=APP_PARTY)
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
async def system(infra: Settings) -> AsyncIterator[PartnerSystem]:
    keys = KeyRing()
    tokens = InternalTokens(SECRET)

    def settings(service: str) -> Settings:
        return Settings(
            kafka_bootstrap=infra.kafka_bootstrap,
            mongo_url=infra.mongo_url,
            mongo_database=unique_name(f"gala_gateway_{service}_"),
            internal_token_secret=SECRET,
        )

    partners_app = create_app(partners_service, ProcessRole.API, settings("partners"))

    @partners_app.get("/api/v1/partners/echo")
    async def echo(request: Request) -> dict[str, Any]:  # what the gateway forwards
        return tokens.verify(request.headers.get(IDENTITY_HEADER)).model_dump(mode="json")

    partners_app.router.routes.insert(0, partners_app.router.routes.pop())
    async with (
        http_server(identity_provider(keys)) as idp,
        http_server(
            create_app(contacts_service, ProcessRole.API, settings("contacts"))
        ) as contacts,
        http_server(partners_app) as partners,
    ):
        gateway_settings = GatewaySettings(
            contacts_url=contacts,
            partners_url=partners,
            auth_jwks_url=f"{idp}/.well-known/jwks.json",
            auth_issuer=ISSUER,
            auth_authorized_parties=[APP_PARTY],
            internal_token_secret=SECRET,
            auth_directory_cache_seconds=0,
            auth_partner_key_cache_seconds=KEY_CACHE_SECONDS,
            partner_rate_limit_per_minute=60,
            partner_rate_limit_burst=PARTNER_BURST,
        )
        venue = unique_name("venue-")
        async with httpx.AsyncClient(base_url=contacts) as client:
            created = await client.post(
                "/internal/v1/users",
                json={
                    "venueId": venue,
                    "authSubject": "user_partner_admin",
                    "email": "admin@partners.example",
                    "role": "ADMIN",
                },
                headers={IDENTITY_HEADER: tokens.issue_for_service("test")},
            )
            assert created.status_code == 201, created.text
        async with http_server(create_gateway(gateway_settings)) as gateway:
            yield PartnerSystem(gateway=gateway, keys=keys, venue=venue)


@pytest.fixture
async def client(system: PartnerSystem) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=system.gateway, timeout=10) as client:
        yield client


async def new_app(system: PartnerSystem, client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/partners/apps",
        json={"name": "ERP sync"},
        headers=system.bearer("user_partner_admin"),
    )
    assert response.status_code == 201, response.text
    app: dict[str, Any] = response.json()
    return app


def key(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def assert_problem(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_key_reaches_partner_routes_as_partner_of_its_venue(system, client) -> None:
    app = await new_app(system, client)
    echo = await client.get("/api/v1/partners/echo", headers=key(app["apiKey"]))
    assert echo.status_code == 200, echo.text
    assert echo.json() == {
        "user_id": f"partner-app:{app['id']}",
        "venue_id": system.venue,
        "role": "PARTNER",
    }
    events = await client.get("/api/v1/partners/events", headers=key(app["apiKey"]))
    assert events.status_code == 200, events.text
    # managing apps stays the ADMIN's: a key is no ADMIN
    assert_problem(await client.get("/api/v1/partners/apps", headers=key(app["apiKey"])), 403)
    # an ADMIN's session keeps working on partner routes
    admin = await client.get("/api/v1/partners/events", headers=system.bearer("user_partner_admin"))
    assert admin.status_code == 200, admin.text


async def test_a_key_is_no_session_anywhere_else(system, client) -> None:
    app = await new_app(system, client)
    for path in ("/api/v1/users/me", "/api/v1/contacts", "/api/v1/rooms"):
        assert_problem(await client.get(path, headers=key(app["apiKey"])), 401)


async def test_unknown_and_malformed_keys_are_401(system, client) -> None:
    for bad in ("gala_pk_" + "A" * 43, "gala_pk_short", "gala_pk_" + "!" * 43):
        assert_problem(await client.get("/api/v1/partners/events", headers=key(bad)), 401)


async def test_a_revoked_key_is_refused_within_the_cache_time(system, client) -> None:
    app = await new_app(system, client)
    assert (
        await client.get("/api/v1/partners/events", headers=key(app["apiKey"]))
    ).status_code == 200
    revoked = await client.post(
        f"/api/v1/partners/apps/{app['id']}/revoke", headers=system.bearer("user_partner_admin")
    )
    assert revoked.status_code == 200, revoked.text
    started = time.monotonic()

    async def refused() -> bool:
        response = await client.get("/api/v1/partners/events", headers=key(app["apiKey"]))
        return response.status_code == 401

    await eventually(refused, timeout=KEY_CACHE_SECONDS + 4, interval=0.1)
    assert time.monotonic() - started <= KEY_CACHE_SECONDS + 4


async def test_a_rotated_key_replaces_the_old_one(system, client) -> None:
    app = await new_app(system, client)
    rotated = await client.post(
        f"/api/v1/partners/apps/{app['id']}/keys/rotate",
        headers=system.bearer("user_partner_admin"),
    )
    assert rotated.status_code == 200, rotated.text
    new_key = rotated.json()["apiKey"]
    assert new_key != app["apiKey"]
    assert (await client.get("/api/v1/partners/events", headers=key(new_key))).status_code == 200

    async def old_refused() -> bool:
        response = await client.get("/api/v1/partners/events", headers=key(app["apiKey"]))
        return response.status_code == 401

    await eventually(old_refused, timeout=KEY_CACHE_SECONDS + 4, interval=0.1)


async def test_keys_are_rate_limited_per_app(system, client) -> None:
    limited, other = await new_app(system, client), await new_app(system, client)
    statuses = [
        (await client.get("/api/v1/partners/events", headers=key(limited["apiKey"]))).status_code
        for _ in range(PARTNER_BURST + 3)
    ]
    assert 429 in statuses, statuses
    refused = await client.get("/api/v1/partners/events", headers=key(limited["apiKey"]))
    assert_problem(refused, 429)
    assert int(refused.headers["retry-after"]) >= 1
    ok = await client.get("/api/v1/partners/events", headers=key(other["apiKey"]))
    assert ok.status_code == 200, ok.text
