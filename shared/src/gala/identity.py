"""Who is calling: the principal the gateway forwards, signed, to every service.

The gateway authenticates the end user, resolves their role and venue, and forwards a
short-lived internal token (HS256 over a secret shared by the gateway and services) in
the ``X-Gala-Identity`` header. Services verify it on every request: a request that
bypasses the gateway has no valid token and gets 401.

Verifying a signature on every request is most of what a small read costs, so what a
token was found to say is kept (:class:`TokenCache`: keyed by the token's SHA-256, at
most a bounded number of tokens, least recently used first out, never past the token's
``exp``), and the gateway signs one token per principal for part of its lifetime
(:meth:`InternalTokens.issue_reused`) instead of one per request.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from enum import StrEnum
from typing import Annotated, Any, Generic, TypeVar

import jwt
from fastapi import Depends, Request
from pydantic import BaseModel, ConfigDict

from gala.errors import Forbidden, Unauthorized

IDENTITY_HEADER = "X-Gala-Identity"
ISSUER = "gala-gateway"
AUDIENCE = "gala-services"
ALGORITHM = "HS256"
LEEWAY_SECONDS = 5
TOKEN_CACHE_SIZE = 10_000
REUSE_FRACTION = 0.5
"""The gateway reuses a principal's token for this part of its lifetime (then signs anew),
so that a forwarded token always has at least the rest of its lifetime left."""

V = TypeVar("V")


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


class TokenCache(Generic[V]):
    """What verifying a token found, by the token's SHA-256: an answer is served only
    before its ``until`` (a wall-clock time: the token's ``exp`` or earlier), and at most
    ``size`` tokens are kept (the least recently used goes first).

    Keyed by the whole token, signature included: a token that differs in any byte (a
    forged signature, another key) is a miss and is verified in full."""

    def __init__(self, size: int = TOKEN_CACHE_SIZE) -> None:
        self.size = size
        self.hits = 0
        self._entries: OrderedDict[bytes, tuple[float, V]] = OrderedDict()

    @staticmethod
    def key(token: str) -> bytes:
        return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()

    def get(self, token: str, *, now: float | None = None) -> V | None:
        key = self.key(token)
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= (time.time() if now is None else now):
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry[1]

    def put(self, token: str, value: V, *, until: float) -> None:
        key = self.key(token)
        self._entries[key] = (until, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


class InternalTokens:
    """Issues and verifies internal identity tokens with one shared secret.

    A verified token's claims are kept until its ``exp`` (:class:`TokenCache`), so each
    token's signature is checked once per process, not once per request."""

    def __init__(
        self, secret: str, ttl_seconds: int = 120, *, leeway_seconds: int = LEEWAY_SECONDS
    ) -> None:
        if len(secret) < 32:
            raise ValueError("the internal token secret must be at least 32 characters")
        self._secret = secret
        self._ttl = ttl_seconds
        self._leeway = leeway_seconds
        self.verified: TokenCache[dict[str, Any]] = TokenCache()
        self._issued: dict[Principal, tuple[float, str]] = {}

    def issue(self, principal: Principal, *, now: float | None = None) -> str:
        """A token for a user's request, as the gateway forwards it."""
        return self._sign(
            {"sub": principal.user_id, "venue": principal.venue_id, "role": principal.role.value},
            now,
        )

    def issue_reused(self, principal: Principal) -> str:
        """A token for ``principal``: the one signed earlier while it has lived less than
        :data:`REUSE_FRACTION` of its lifetime, else a new one (the gateway's per-request
        path: one signature per principal every ``ttl * REUSE_FRACTION`` seconds)."""
        now = time.time()
        found = self._issued.get(principal)
        if found is not None and now < found[0]:
            return found[1]
        token = self.issue(principal, now=now)
        if len(self._issued) >= TOKEN_CACHE_SIZE:
            self._issued = {p: e for p, e in self._issued.items() if e[0] > now}
            if len(self._issued) >= TOKEN_CACHE_SIZE:
                self._issued.clear()
        self._issued[principal] = (int(now) + self._ttl * REUSE_FRACTION, token)
        return token

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
        cached = self.verified.get(token)
        if cached is not None:
            return cached
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                leeway=self._leeway,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("The identity token has expired.") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized("The identity token is not valid.") from exc
        exp = claims["exp"]
        if isinstance(exp, int | float):
            self.verified.put(token, claims, until=float(exp))
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
