"""Who is calling: the principal the gateway forwards, signed, to every service.

The gateway authenticates the end user, resolves their role and venue, and forwards a
short-lived internal token (HS256 over a secret shared by the gateway and services) in
the ``X-Gala-Identity`` header. Services verify it on every request: a request that
bypasses the gateway has no valid token and gets 401.
"""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request
from pydantic import BaseModel, ConfigDict

from gala.errors import Forbidden, Unauthorized

IDENTITY_HEADER = "X-Gala-Identity"
ISSUER = "gala-gateway"
AUDIENCE = "gala-services"
ALGORITHM = "HS256"
LEEWAY_SECONDS = 5


class Role(StrEnum):
    ADMIN = "ADMIN"
    SALES = "SALES"
    PROJECT_MANAGER = "PROJECT_MANAGER"
    STAFF = "STAFF"
    CLIENT = "CLIENT"
    PARTNER = "PARTNER"
    """A partner app's API key (``gala_pk_...``) of one venue: its events and webhooks only.
    Never a person's role: the users API refuses it."""


PEOPLE_ROLES: frozenset[Role] = frozenset(role for role in Role if role is not Role.PARTNER)
"""The roles a person (a user of the contacts service) may hold."""


class Principal(BaseModel):
    """The authenticated caller: a user of one venue, with one role."""

    model_config = ConfigDict(frozen=True)

    user_id: str
    venue_id: str
    role: Role

    def has_role(self, *roles: Role) -> bool:
        return self.role in roles


class InternalTokens:
    """Issues and verifies internal identity tokens with one shared secret."""

    def __init__(self, secret: str, ttl_seconds: int = 120) -> None:
        if len(secret) < 32:
            raise ValueError("the internal token secret must be at least 32 characters")
        self._secret = secret
        self._ttl = ttl_seconds

    def issue(self, principal: Principal, *, now: float | None = None) -> str:
        """A token for a user's request, as the gateway forwards it."""
        return self._sign(
            {"sub": principal.user_id, "venue": principal.venue_id, "role": principal.role.value},
            now,
        )

    def issue_for_service(self, service: str, *, now: float | None = None) -> str:
        """A token for a Gala process calling an internal endpoint on its own behalf."""
        return self._sign({"sub": f"service:{service}", "svc": service}, now)

    def verify(self, token: str | None) -> Principal:
        claims = self._claims(token)
        if "svc" in claims:
            raise Unauthorized("A service token cannot act as a user.")
        try:
            return Principal(user_id=claims["sub"], venue_id=claims["venue"], role=claims["role"])
        except (KeyError, ValueError) as exc:
            raise Unauthorized("The identity token lacks a venue or a known role.") from exc

    def verify_service(self, token: str | None) -> str:
        """The calling service's name; refuses user tokens."""
        service = self._claims(token).get("svc")
        if not isinstance(service, str) or not service:
            raise Unauthorized("This endpoint is for Gala's own services.")
        return service

    def _sign(self, claims: dict[str, Any], now: float | None) -> str:
        issued = int(now if now is not None else time.time())
        payload = {
            **claims,
            "iss": ISSUER,
            "aud": AUDIENCE,
            "iat": issued,
            "exp": issued + self._ttl,
        }
        return jwt.encode(payload, self._secret, algorithm=ALGORITHM)

    def _claims(self, token: str | None) -> dict[str, Any]:
        if not token:
            raise Unauthorized("No identity: requests must come through the gateway.")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("The identity token has expired.") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized("The identity token is not valid.") from exc
        return claims


def _tokens(request: Request) -> InternalTokens:
    tokens: InternalTokens = request.app.state.internal_tokens
    return tokens


async def current_principal(request: Request) -> Principal:
    return _tokens(request).verify(request.headers.get(IDENTITY_HEADER))


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


async def calling_service(request: Request) -> str:
    return _tokens(request).verify_service(request.headers.get(IDENTITY_HEADER))


CallingService = Annotated[str, Depends(calling_service)]
"""For internal endpoints (``/internal/...``): the Gala service calling, never a user."""


def require_roles(*roles: Role) -> Any:
    """A dependency that answers 403 unless the caller has one of ``roles``.

    Use it as ``principal: Annotated[Principal, require_roles(Role.ADMIN, Role.SALES)]``.
    """
    allowed = ", ".join(role.value for role in roles)

    async def dependency(principal: CurrentPrincipal) -> Principal:
        if not principal.has_role(*roles):
            raise Forbidden(f"This needs one of the roles: {allowed}.")
        return principal

    return Depends(dependency)


def ensure_role(principal: Principal, roles: frozenset[Role], doing: str) -> None:
    """403 unless ``principal`` has one of ``roles``: "Only ADMIN or SALES may <doing>."."""
    if principal.role not in roles:
        allowed = " or ".join(sorted(role.value for role in roles))
        raise Forbidden(f"Only {allowed} may {doing}.")


async def current_venue(principal: CurrentPrincipal) -> str:
    return principal.venue_id


VenueId = Annotated[str, Depends(current_venue)]
"""The caller's venue: every query a service runs for a request is scoped to it."""


def venue_scoped(venue_id: str, query: dict[str, Any] | None = None) -> dict[str, Any]:
    """A store filter limited to one venue."""
    return {**(query or {}), "venueId": venue_id}
