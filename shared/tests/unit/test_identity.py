import time
from typing import Annotated

import httpx
import jwt
import pytest
from fastapi import FastAPI

from gala.errors import Unauthorized, install_problem_handlers
from gala.identity import (
    IDENTITY_HEADER,
    CurrentPrincipal,
    InternalTokens,
    Principal,
    Role,
    TokenCache,
    VenueId,
    require_roles,
)

SECRET = "s" * 40
ALICE = Principal(user_id="u-1", venue_id="venue-1", role=Role.SALES)


def test_a_token_round_trips_the_principal():
    tokens = InternalTokens(SECRET)
    assert tokens.verify(tokens.issue(ALICE)) == ALICE


def test_missing_token_is_refused():
    with pytest.raises(Unauthorized, match="through the gateway"):
        InternalTokens(SECRET).verify(None)


def test_tampered_token_is_refused():
    token = InternalTokens(SECRET).issue(ALICE)
    header, _payload, signature = token.split(".")
    forged = jwt.encode(
        {**jwt.decode(token, options={"verify_signature": False}), "role": "ADMIN"},
        "x" * 40,
        algorithm="HS256",
    ).split(".")[1]
    with pytest.raises(Unauthorized, match="not valid"):
        InternalTokens(SECRET).verify(f"{header}.{forged}.{signature}")


def test_token_signed_with_another_secret_is_refused():
    other = InternalTokens("o" * 40).issue(ALICE)
    with pytest.raises(Unauthorized):
        InternalTokens(SECRET).verify(other)


def test_expired_token_is_refused():
    tokens = InternalTokens(SECRET, ttl_seconds=10)
    token = tokens.issue(ALICE, now=time.time() - 60)
    with pytest.raises(Unauthorized, match="expired"):
        tokens.verify(token)


def test_unsigned_token_is_refused():
    claims = jwt.decode(InternalTokens(SECRET).issue(ALICE), options={"verify_signature": False})
    unsigned = jwt.encode(claims, key=None, algorithm="none")
    with pytest.raises(Unauthorized):
        InternalTokens(SECRET).verify(unsigned)


def test_short_secrets_are_rejected():
    with pytest.raises(ValueError):
        InternalTokens("short")


def make_app() -> FastAPI:
    app = FastAPI()
    app.state.internal_tokens = InternalTokens(SECRET)
    install_problem_handlers(app)

    @app.get("/me")
    async def me(principal: CurrentPrincipal, venue: VenueId) -> dict[str, str]:
        return {"user": principal.user_id, "venue": venue}

    @app.get("/admin")
    async def admin(principal: Annotated[Principal, require_roles(Role.ADMIN)]) -> dict[str, str]:
        return {"user": principal.user_id}

    return app


async def call(path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    transport = httpx.ASGITransport(app=make_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get(path, headers=headers or {})


async def test_endpoints_answer_401_problem_without_identity():
    response = await call("/me")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:gala:problem:unauthorized"


async def test_endpoints_see_the_principal_and_venue():
    token = InternalTokens(SECRET).issue(ALICE)
    response = await call("/me", {IDENTITY_HEADER: token})
    assert response.json() == {"user": "u-1", "venue": "venue-1"}


async def test_role_requirements_answer_403():
    token = InternalTokens(SECRET).issue(ALICE)
    response = await call("/admin", {IDENTITY_HEADER: token})
    assert response.status_code == 403
    assert "ADMIN" in response.json()["detail"]


def test_service_tokens_name_the_calling_service():
    tokens = InternalTokens(SECRET)
    assert tokens.verify_service(tokens.issue_for_service("gateway")) == "gateway"


def test_service_and_user_tokens_are_not_interchangeable():
    tokens = InternalTokens(SECRET)
    with pytest.raises(Unauthorized, match="cannot act as a user"):
        tokens.verify(tokens.issue_for_service("gateway"))
    with pytest.raises(Unauthorized, match="Gala's own services"):
        tokens.verify_service(tokens.issue(ALICE))


# --- the verification cache and the reused tokens (issue #16) ------------------------


def test_a_verified_token_is_checked_once_then_served_from_the_cache():
    tokens = InternalTokens(SECRET)
    token = tokens.issue(ALICE)
    assert tokens.verify(token) == ALICE
    assert tokens.verify(token) == ALICE
    assert tokens.verified.hits == 1
    assert len(tokens.verified) == 1


def test_the_cache_never_serves_a_token_past_its_exp():
    tokens = InternalTokens(SECRET, ttl_seconds=1, leeway_seconds=0)
    token = tokens.issue(ALICE)
    assert tokens.verify(token) == ALICE  # now cached
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    while time.time() <= exp:
        time.sleep(0.05)
    with pytest.raises(Unauthorized, match="expired"):
        tokens.verify(token)


def test_a_token_differing_only_in_its_signature_is_refused_though_its_twin_is_cached():
    tokens = InternalTokens(SECRET)
    token = tokens.issue(ALICE)
    assert tokens.verify(token) == ALICE
    header, payload, _signature = token.split(".")
    _, _, other = InternalTokens("o" * 40).issue(ALICE, now=time.time()).split(".")
    forged = f"{header}.{payload}.{other}"
    assert forged != token
    with pytest.raises(Unauthorized, match="not valid"):
        tokens.verify(forged)


def test_the_cache_keeps_at_most_its_size_least_recently_used_out_first():
    cache: TokenCache[str] = TokenCache(size=2)
    until = time.time() + 60
    cache.put("a", "A", until=until)
    cache.put("b", "B", until=until)
    assert cache.get("a") == "A"  # a is now the most recently used
    cache.put("c", "C", until=until)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == ("A", None, "C")
    assert cache.get("a", now=until) is None  # never at or past its time


def test_the_gateway_reuses_a_principals_token_for_part_of_its_lifetime():
    tokens = InternalTokens(SECRET, ttl_seconds=2)
    bob = Principal(user_id="u-2", venue_id="venue-1", role=Role.ADMIN)
    first = tokens.issue_reused(ALICE)
    assert tokens.issue_reused(ALICE) == first
    assert tokens.issue_reused(bob) != first
    assert tokens.verify(tokens.issue_reused(bob)) == bob
    time.sleep(1.1)  # past REUSE_FRACTION of a 2 s lifetime: signed anew, with more left
    renewed = tokens.issue_reused(ALICE)
    assert renewed != first
    assert tokens.verify(renewed) == ALICE
