"""The gateway's fast path (issue #16): what it caches never outlives what it may, its
answers are the service's own bytes, and its process serves on uvloop with httptools."""

import asyncio
import json
import os
import time
from pathlib import Path

import httpx
import jwt
import pytest

from gala.errors import Unauthorized
from gala.identity import IDENTITY_HEADER, Principal
from gala.testing import ServiceProcess, free_port, http_server
from gateway.app import create_app as create_gateway
from gateway.auth import JwksCache, SessionVerifier
from gateway.devauth import SigningKey
from gateway.settings import GatewaySettings
from gateway.tests.integration.conftest import (
    APP_PARTY,
    BIG_ANSWER,
    ISSUER,
    SECRET,
    identity_provider,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def add_user(system, venue: str, name: str, role: str) -> dict:
    service = {IDENTITY_HEADER: system.tokens.issue_for_service("test")}
    async with httpx.AsyncClient(base_url=system.contacts, headers=service) as contacts:
        response = await contacts.post(
            "/internal/v1/users",
            json={
                "venueId": venue,
                "authSubject": f"user_{name}",
                "email": f"{name}@example.com",
                "role": role,
            },
        )
    assert response.status_code == 201, response.text
    return response.json()


async def eventually(check, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        found = await check()
        if found or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.1)


async def test_a_session_is_verified_once_per_token_and_never_served_past_its_exp(system):
    async with (
        http_server(identity_provider(system.keys)) as idp,
        httpx.AsyncClient() as http,
    ):
        verifier = SessionVerifier(
            JwksCache(f"{idp}/.well-known/jwks.json", http), issuer=ISSUER, leeway_seconds=0
        )
        token = system.token("user_brief", ttl_seconds=2)
        first = await verifier.verify(token)
        assert await verifier.verify(token) == first
        assert verifier.verified.hits == 1

        # the same header and claims with another key's signature: verified in full, refused
        header, payload, _ = token.split(".")
        claims = jwt.decode(token, options={"verify_signature": False})
        other = SigningKey.generate()
        foreign = jwt.encode(claims, other.private_key, algorithm="RS256", headers={"kid": "x"})
        forged = f"{header}.{payload}.{foreign.rsplit('.', 1)[1]}"
        with pytest.raises(Unauthorized, match="signature"):
            await verifier.verify(forged)

        await asyncio.sleep(max(0.0, claims["exp"] - time.time()) + 0.05)  # past its exp
        with pytest.raises(Unauthorized, match="expired"):
            await verifier.verify(token)


async def test_a_user_the_directory_no_longer_knows_is_refused_once_its_cache_time_passes(
    system,
):
    admin = await add_user(system, "venue-cache", "cache_admin", "ADMIN")
    staff = await add_user(system, "venue-cache", "cache_staff", "STAFF")
    async with http_server(identity_provider(system.keys)) as idp:
        settings = GatewaySettings(
            contacts_url=system.contacts,
            auth_jwks_url=f"{idp}/.well-known/jwks.json",
            auth_issuer=ISSUER,
            auth_authorized_parties=[APP_PARTY],
            internal_token_secret=SECRET,
            auth_directory_cache_seconds=1,
        )
        app = create_gateway(settings)
        async with (
            http_server(app) as gateway,
            httpx.AsyncClient(base_url=gateway, timeout=10) as client,
        ):
            session = system.bearer("user_cache_staff")  # one token throughout
            for _ in range(2):
                me = await client.get("/api/v1/users/me", headers=session)
                assert me.status_code == 200, me.text
                assert me.json()["id"] == staff["id"]
            gone = await client.patch(
                f"/api/v1/users/{staff['id']}",
                json={"active": False},
                headers=system.bearer("user_cache_admin"),
            )
            assert gone.status_code == 200, gone.text

            async def refused() -> bool:
                answer = await client.get("/api/v1/users/me", headers=session)
                return answer.status_code == 403

            assert await eventually(refused), "the deactivated user kept their access"
            assert app.state.gateway.verifier.verified.hits >= 1  # the token was cached
    assert admin["role"] == "ADMIN"


async def test_json_answers_are_the_services_own_bytes(system):
    user = await add_user(system, "venue-bytes", "bytes_admin", "ADMIN")
    principal = Principal(user_id=user["id"], venue_id="venue-bytes", role="ADMIN")
    direct_headers = {IDENTITY_HEADER: system.tokens.issue(principal)}
    session = system.bearer("user_bytes_admin")
    async with (
        httpx.AsyncClient(base_url=system.gateway) as gateway,
        httpx.AsyncClient(base_url=system.contacts) as direct,
    ):
        for path, status, media_type in [
            ("/api/v1/users/me", 200, "application/json"),
            (f"/api/v1/users/{user['id']}", 200, "application/json"),
            ("/api/v1/users/no-such-user", 404, "application/problem+json"),
        ]:
            through = await gateway.get(path, headers=session)
            straight = await direct.get(path, headers=direct_headers)
            assert through.status_code == straight.status_code == status, through.text
            assert through.headers["content-type"] == straight.headers["content-type"]
            assert through.headers["content-type"] == media_type
            assert through.content == straight.content
            assert int(through.headers["content-length"]) == len(through.content)
        body = json.loads(through.content)
        assert body["type"].endswith("not-found") and body["status"] == 404


async def test_forwarded_requests_are_counted_by_the_proxy_route_template(system):
    await add_user(system, "venue-metrics", "metrics_admin", "ADMIN")
    async with httpx.AsyncClient(base_url=system.gateway) as client:
        echo = await client.get("/api/v1/rooms/echo", headers=system.bearer("user_metrics_admin"))
        assert echo.status_code == 200
        metrics = (await client.get("/metrics")).text
    counted = [line for line in metrics.splitlines() if "gala_http_requests_total{" in line]
    assert any('route="/api/v1/{path:path}"' in line for line in counted), counted


async def test_a_big_answer_passes_whole_with_or_without_its_length(system):
    session = system.bearer("user_big_admin")
    await add_user(system, "venue-big", "big_admin", "ADMIN")
    async with httpx.AsyncClient(base_url=system.gateway, timeout=10) as client:
        for sized in (True, False):
            async with client.stream(
                "GET", f"/api/v1/rooms/big?sized={str(sized).lower()}", headers=session
            ) as answer:
                assert answer.status_code == 200
                received = b"".join([chunk async for chunk in answer.aiter_raw()])
            assert received == BIG_ANSWER
            assert answer.headers["content-type"] == "application/octet-stream"


async def test_the_gateway_process_serves_on_uvloop_with_httptools(tmp_path: Path):
    port = free_port()
    env = {
        **os.environ,
        "GALA_DEV_MODE": "true",
        "GALA_AUTH_DEV_MODE": "true",
        "GALA_AUTH_DEV_KEY_DIR": str(tmp_path / "dev-auth"),
        "GALA_HOST": "127.0.0.1",
        "GALA_LOG_LEVEL": "INFO",
        "GALA_GATEWAY_PORT": str(port),
    }
    for outside in ("GALA_AUTH_JWKS_URL", "GALA_AUTH_ISSUER", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        env.pop(outside, None)
    process = ServiceProcess("gateway", env, port, log_file=tmp_path / "gateway.log")
    async with process:
        lines = [
            json.loads(line)
            for line in process.output().splitlines()
            if line.startswith("{") and '"serving"' in line
        ]
    assert lines, process.output()[-3000:]
    assert lines[0]["loop"] == "uvloop"
    assert lines[0]["http_protocol"] == "HttpToolsProtocol"
