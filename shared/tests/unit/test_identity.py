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
