"""The gateway on real sockets: refusals, routing, upstream failures, edge protection."""

import asyncio
import base64
import json
import time

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from openapi_spec_validator import validate
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from gala.identity import IDENTITY_HEADER, Principal, Role
from gala.testing import free_port, http_server
from gateway.app import create_app as create_gateway
from gateway.devauth import SigningKey
from gateway.settings import SERVICES, GatewaySettings
from gateway.tests.integration.conftest import ISSUER

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="module")
async def users(system):
    """Users created through the contacts service's internal API, as `gala users add` does."""
    service = {IDENTITY_HEADER: system.tokens.issue_for_service("test")}
    created = {}
    async with httpx.AsyncClient(base_url=system.contacts, headers=service) as contacts:
        for name, venue, role in [
            ("admin_a", "venue-a", "ADMIN"),
            ("sales_a", "venue-a", "SALES"),
            ("gone_a", "venue-a", "STAFF"),
            ("admin_b", "venue-b", "ADMIN"),
        ]:
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
            created[name] = response.json()
    async with httpx.AsyncClient(base_url=system.gateway) as gateway:
        deactivated = await gateway.patch(
            f"/api/v1/users/{created['gone_a']['id']}",
            json={"active": False},
            headers=system.bearer("user_admin_a"),
        )
        assert deactivated.status_code == 200, deactivated.text
    return created


@pytest.fixture
async def client(system):
    async with httpx.AsyncClient(base_url=system.gateway, timeout=10) as client:
        yield client


def assert_problem(response: httpx.Response, status: int, words: str = "") -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert words.lower() in body.get("detail", "").lower()
    return body


async def test_a_valid_session_reaches_the_service_as_the_user(system, users, client):
    me = await client.get("/api/v1/users/me", headers=system.bearer("user_admin_a"))
    assert me.status_code == 200, me.text
    assert me.json()["id"] == users["admin_a"]["id"]
    assert me.json()["venueId"] == "venue-a"


async def test_the_forwarded_identity_is_the_gateways_own(system, users, client):
    forged = system.tokens.issue(Principal(user_id="x", venue_id="venue-b", role=Role.ADMIN))
    echoed = await client.get(
        "/api/v1/rooms/echo",
        headers={**system.bearer("user_sales_a"), IDENTITY_HEADER: forged, "X-Request-ID": "r-1"},
    )
    assert echoed.status_code == 200, echoed.text
    body = echoed.json()
    assert body["principal"] == {
        "user_id": users["sales_a"]["id"],
        "venue_id": "venue-a",
        "role": "SALES",
    }
    assert body["authorization"] is None  # the session token stays at the edge
    assert body["requestId"] == "r-1"
    assert echoed.headers["x-request-id"] == "r-1"


async def test_no_token_is_401(client, users):
    assert_problem(await client.get("/api/v1/users/me"), 401, "session token is required")
    forged_only = await client.get("/api/v1/users/me", headers={IDENTITY_HEADER: "anything"})
    assert_problem(forged_only, 401)


async def test_a_bad_signature_is_401(system, users, client):
    impostor = SigningKey.generate()
    impostor.kid = system.keys.current.kid  # claims to be the published key
    token = system.token("user_admin_a", key=impostor)
    response = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert_problem(response, 401, "signature")


async def test_alg_none_is_401(system, users, client):
    claims = jwt.decode(system.token("user_admin_a"), options={"verify_signature": False})
    token = jwt.encode(claims, key=None, algorithm="none", headers={"kid": system.keys.current.kid})
    response = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert_problem(response, 401, "RS256")


async def test_hs256_signed_with_the_public_key_is_401(system, users, client):
    public_pem = system.keys.current.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    claims = jwt.decode(system.token("user_admin_a"), options={"verify_signature": False})
    header = {"alg": "HS256", "typ": "JWT", "kid": system.keys.current.kid}
    # forged by hand: PyJWT itself refuses to use a PEM public key as an HMAC secret
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{b64(signature)}"
    response = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert_problem(response, 401, "RS256")


async def test_an_unknown_issuer_is_401(system, users, client):
    response = await client.get(
        "/api/v1/users/me", headers=system.bearer("user_admin_a", issuer="https://evil.test")
    )
    assert_problem(response, 401, "unknown issuer")


async def test_an_expired_token_is_401(system, users, client):
    old = time.time() - 3600
    response = await client.get(
        "/api/v1/users/me", headers=system.bearer("user_admin_a", now=old, ttl_seconds=60)
    )
    assert_problem(response, 401, "expired")


async def test_a_token_not_yet_valid_is_401(system, users, client):
    token = system.token("user_admin_a", nbf=int(time.time()) + 600)
    response = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert_problem(response, 401, "not valid yet")


async def test_a_token_for_another_party_is_401(system, users, client):
    response = await client.get(
        "/api/v1/users/me",
        headers=system.bearer("user_admin_a", authorized_party="https://other.test"),
    )
    assert_problem(response, 401, "unknown party")


async def test_garbage_is_401(client, users):
    response = await client.get("/api/v1/users/me", headers={"Authorization": "Bearer abc.def"})
    assert_problem(response, 401, "malformed")


async def test_a_rotated_key_is_fetched_once_and_accepted(system, users, client):
    before = await client.get("/api/v1/users/me", headers=system.bearer("user_admin_a"))
    assert before.status_code == 200  # the gateway has cached the current keys
    system.keys.published.append(SigningKey.generate())  # the provider rotates
    await asyncio.sleep(5.1)  # the refetch of an unknown kid is throttled to one per 5 s
    after = await client.get("/api/v1/users/me", headers=system.bearer("user_admin_a"))
    assert after.status_code == 200, after.text


async def test_a_login_that_matches_no_user_is_403(system, users, client):
    response = await client.get("/api/v1/users/me", headers=system.bearer("user_nobody"))
    assert_problem(response, 403, "no active gala user")


async def test_a_deactivated_user_is_403(system, users, client):
    response = await client.get("/api/v1/users/me", headers=system.bearer("user_gone_a"))
    assert_problem(response, 403)


async def test_a_request_straight_to_a_service_port_is_401(system, users):
    async with httpx.AsyncClient(base_url=system.contacts) as direct:
        response = await direct.get("/api/v1/users/me", headers=system.bearer("user_admin_a"))
    assert_problem(response, 401)


async def test_upstream_client_errors_pass_through_unchanged(system, users, client):
    through = await client.get("/api/v1/users/no-such-user", headers=system.bearer("user_admin_a"))
    async with httpx.AsyncClient(base_url=system.contacts) as direct:
        identity = system.tokens.issue(
            Principal(user_id=users["admin_a"]["id"], venue_id="venue-a", role=Role.ADMIN)
        )
        straight = await direct.get(
            "/api/v1/users/no-such-user", headers={IDENTITY_HEADER: identity}
        )
    assert through.status_code == straight.status_code == 404
    body, expected = through.json(), straight.json()
    body.pop("instance", None), expected.pop("instance", None)
    assert body == expected


async def test_a_service_that_is_down_is_503_naming_it(system, users, client):
    response = await client.get("/api/v1/payments", headers=system.bearer("user_admin_a"))
    assert assert_problem(response, 503)["service"] == "billing"


async def test_a_slow_service_is_504_naming_it(system, users, client):
    response = await client.get("/api/v1/rooms/slow", headers=system.bearer("user_admin_a"))
    assert assert_problem(response, 504)["service"] == "pipeline"


async def test_public_routes_need_no_login(system, users, client):
    # the portal summary is public: no 401, it reaches (here: a down) projects service
    response = await client.get("/api/v1/portal/some-client-link")
    assert assert_problem(response, 503)["service"] == "projects"


async def test_unknown_routes_are_404(system, users, client):
    assert_problem(await client.get("/api/v1/nothing-here"), 404)


async def test_too_many_requests_is_429_with_retry_after(system, users, client):
    headers = system.bearer("user_sales_a")
    statuses = [
        (await client.get("/api/v1/rooms/echo", headers=headers)).status_code for _ in range(25)
    ]
    assert statuses.count(200) >= 19
    refused = await client.get("/api/v1/rooms/echo", headers=headers)
    assert_problem(refused, 429)
    assert int(refused.headers["retry-after"]) >= 1
    # another caller is not affected
    other = await client.get("/api/v1/rooms/echo", headers=system.bearer("user_admin_a"))
    assert other.status_code == 200


async def test_a_body_over_the_limit_is_413(system, users, client):
    small = await client.post(
        "/api/v1/rooms/echo", content=b"x" * 1000, headers=system.bearer("user_admin_a")
    )
    assert small.json()["bytes"] == 1000
    big = await client.post(
        "/api/v1/rooms/echo", content=b"x" * 70_000, headers=system.bearer("user_admin_a")
    )
    assert_problem(big, 413)


async def test_responses_carry_request_ids_and_security_headers(client, users):
    response = await client.get("/api/v1/nothing-here")
    assert len(response.headers["x-request-id"]) >= 16
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert "default-src 'none'" in response.headers["content-security-policy"]


async def test_cors_allows_only_the_allowlist(client, users):
    allowed = await client.options(
        "/api/v1/users/me",
        headers={"Origin": "https://app.gala.test", "Access-Control-Request-Method": "GET"},
    )
    assert allowed.headers["access-control-allow-origin"] == "https://app.gala.test"
    refused = await client.options(
        "/api/v1/users/me",
        headers={"Origin": "https://evil.test", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in refused.headers


async def test_the_merged_openapi_is_valid_and_holds_every_service(client, users):
    response = await client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    validate(document)
    assert document["openapi"].startswith("3.1")
    assert "/api/v1/users/me" in document["paths"]  # contacts
    assert "/api/v1/rooms/echo" in document["paths"]  # pipeline
    assert not any(path.startswith("/internal") for path in document["paths"])
    assert set(document["info"]["x-unavailable-services"]) == {"projects", "billing", "partners"}
    docs = await client.get("/docs")
    assert docs.status_code == 200 and "/api/v1/openapi.json" in docs.text


async def test_the_chat_socket_is_proxied_with_the_callers_identity(system, users):
    url = system.gateway.replace("http", "ws") + "/api/v1/projects/p-1/chat"
    token = system.token("user_admin_a")
    async with connect(url, subprotocols=["gala.chat.v1", f"gala.bearer.{token}"]) as socket:
        assert socket.subprotocol == "gala.chat.v1"
        hello = json.loads(await socket.recv())
        assert hello == {"project": "p-1", "user": users["admin_a"]["id"]}
        await socket.send("hi")
        assert await socket.recv() == "echo:hi"
    async with connect(f"{url}?access_token={token}") as socket:
        assert json.loads(await socket.recv())["user"] == users["admin_a"]["id"]


async def test_the_chat_socket_refuses_without_a_valid_session(system, users):
    url = system.gateway.replace("http", "ws") + "/api/v1/projects/p-1/chat"
    with pytest.raises(ConnectionClosed) as closed:
        async with connect(url) as socket:
            await socket.recv()
    assert closed.value.rcvd.code == 4401
    token = system.token("user_nobody")
    with pytest.raises(ConnectionClosed) as closed:
        async with connect(f"{url}?access_token={token}") as socket:
            await socket.recv()
    assert closed.value.rcvd.code == 4403


async def raw_request(base: str, target: str, headers: dict[str, str] | None = None) -> int:
    """Send ``GET target`` exactly as written (no client-side normalisation); the status."""
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    lines = [f"GET {target} HTTP/1.1", f"Host: {host}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    return int(status_line.split()[1])


@pytest.mark.parametrize(
    "target",
    [
        "/api/v1/contacts/../../../internal/v1/users",
        "/api/v1/contacts/%2e%2e/%2e%2e/%2E%2E/internal/v1/users",
        "/api/v1/contacts/.%2e/internal/v1/users",
        "/api/v1/contacts/./x",
        "/api/v1/contacts/..%2f..%2finternal/v1/users",
        "/api/v1/contacts/x%5c..%5cinternal",
        "/api/v1/projects/%01e/messages",
        "/api/v1/projects/%7f/messages",
        "/api/v1/contacts/%0d%0aX-Injected:%20yes",
        "/api/v1/contacts/%zz",
    ],
)
async def test_dot_segments_and_control_characters_are_400(system, users, target):
    assert await raw_request(system.gateway, target, system.bearer("user_admin_a")) == 400
    assert await raw_request(system.gateway, target) == 400  # before any login


async def test_a_bad_path_answers_problem_json(system, users, client):
    # httpx sends percent escapes as they are
    response = await client.get(
        "/api/v1/projects/%01e/messages", headers=system.bearer("user_admin_a")
    )
    assert assert_problem(response, 400, "control character")["type"].endswith("invalid-path")


async def test_the_path_and_query_are_forwarded_raw(system, users, client):
    response = await client.get(
        "/api/v1/rooms/ech%6F?q=a%20b&tag=%C3%A9t%C3%A9&x=1+2",
        headers=system.bearer("user_admin_a"),
    )
    assert response.status_code == 200, response.text
    assert response.json()["rawPath"] == "/api/v1/rooms/ech%6F"
    assert response.json()["query"] == "q=a%20b&tag=%C3%A9t%C3%A9&x=1+2"


async def test_the_chat_socket_refuses_a_bad_path(system, users):
    url = system.gateway.replace("http", "ws") + "/api/v1/projects/%2e%2e/chat"
    token = system.token("user_admin_a")
    async with connect(url, subprotocols=[f"gala.bearer.{token}"]) as socket:
        with pytest.raises(ConnectionClosed) as closed:
            await socket.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4400


async def test_behind_an_ingress_anonymous_callers_are_keyed_by_their_own_address():
    """With one trusted proxy (an ingress) in front, each caller has its own bucket,
    keyed by the address the ingress appended, whatever the caller claims before it."""
    down = f"http://127.0.0.1:{free_port()}"
    settings = GatewaySettings(
        **{f"{service}_url": down for service in SERVICES},
        auth_jwks_url=f"{down}/jwks.json",
        auth_issuer=ISSUER,
        upstream_retries=0,
        rate_limit_per_minute=1,
        rate_limit_burst=2,
        trusted_proxies=1,
    )
    async with (
        http_server(create_gateway(settings)) as gateway,
        httpx.AsyncClient(base_url=gateway) as client,
    ):

        async def form(forwarded_for: str) -> int:
            response = await client.post(
                "/api/v1/intake/some-key", json={}, headers={"X-Forwarded-For": forwarded_for}
            )
            return response.status_code

        # the first caller spends its burst, however it forges the part before the ingress
        assert [await form(f"10.9.9.{n}, 203.0.113.7") for n in range(3)] == [503, 503, 429]
        # a second caller behind the same ingress is not affected
        assert await form("198.51.100.20") == 503


async def test_the_gateway_serves_its_own_metrics_and_never_a_services(system, users, client):
    await client.get("/api/v1/rooms/echo", headers=system.bearer("user_admin_a"))
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert 'gala_http_requests_total{method="GET"' in response.text
    assert 'service="gateway"' in response.text
    # a service's metrics are not reachable through the gateway
    assert (await client.get("/api/v1/metrics")).status_code == 404
