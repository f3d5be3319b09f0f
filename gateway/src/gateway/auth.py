"""Verifies end users' session tokens: RS256 JWTs signed by keys from a JWKS.

These are the checks Clerk's SDKs make on its session tokens (claims ``sub``, ``sid``,
``azp``, ``iss``, ``iat``, ``nbf``, ``exp``): the signature against the issuer's JWKS
(cached; an unknown ``kid`` triggers one refetch, so rotated keys are picked up), the
issuer, ``exp``/``nbf`` with a small leeway, and ``azp`` against an allowlist when set.
Only RS256 is accepted: ``none`` and HS256 (e.g. signed with the public key) are refused.

A verified token's claims are kept per token (:class:`gala.identity.TokenCache`: by the
token's SHA-256, bounded, never past its ``exp`` nor longer than the JWKS cache time), so
the RSA signature of a session is checked once per gateway process, not per request.
Who the subject is (active, role, venue) is not part of it: the user directory answers
that, with its own short cache, on every request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt.algorithms import RSAAlgorithm

from gala.errors import ServiceUnavailable, Unauthorized
from gala.identity import TokenCache

log = logging.getLogger(__name__)

ALGORITHM = "RS256"
REFETCH_MIN_INTERVAL_SECONDS = 5.0


class JwksCache:
    """The identity provider's signing keys by ``kid``, fetched over HTTP and cached."""

    def __init__(self, url: str, http: httpx.AsyncClient, *, ttl_seconds: float = 300.0) -> None:
        self.url = url
        self._http = http
        self.ttl = ttl_seconds
        self._keys: dict[str, RSAPublicKey] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def key(self, kid: str) -> RSAPublicKey:
        if time.monotonic() - self._fetched_at > self.ttl:
            await self.refresh()
        key = self._keys.get(kid)
        if key is None and time.monotonic() - self._fetched_at > REFETCH_MIN_INTERVAL_SECONDS:
            await self.refresh()  # a key we do not know yet: the provider may have rotated
            key = self._keys.get(kid)
        if key is None:
            raise Unauthorized("The token is signed with an unknown key.")
        return key

    async def ensure_fresh(self) -> None:
        """Fetch the keys if they are missing or older than the cache lifetime."""
        if not self._keys or time.monotonic() - self._fetched_at > self.ttl:
            await self.refresh()

    async def refresh(self) -> None:
        async with self._lock:
            try:
                response = await self._http.get(self.url)
                response.raise_for_status()
                document = response.json()
            except (httpx.HTTPError, ValueError) as exc:
                log.warning("fetching the JWKS failed", extra={"url": self.url, "error": repr(exc)})
                if not self._keys:
                    raise ServiceUnavailable(
                        "The identity provider's keys cannot be fetched.", service="auth"
                    ) from exc
                return  # keep serving with the keys we have
            self._keys = parse_jwks(document)
            self._fetched_at = time.monotonic()


def parse_jwks(document: Any) -> dict[str, RSAPublicKey]:
    keys: dict[str, RSAPublicKey] = {}
    for jwk in document.get("keys", []) if isinstance(document, dict) else []:
        if jwk.get("kty") != "RSA" or jwk.get("use", "sig") != "sig" or "kid" not in jwk:
            continue
        if jwk.get("alg", ALGORITHM) != ALGORITHM:
            continue
        key = RSAAlgorithm.from_jwk(json.dumps(jwk))
        if isinstance(key, RSAPublicKey):
            keys[jwk["kid"]] = key
    return keys


class SessionVerifier:
    def __init__(
        self,
        jwks: JwksCache,
        *,
        issuer: str,
        authorized_parties: Sequence[str] = (),
        leeway_seconds: int = 30,
    ) -> None:
        self._jwks = jwks
        self._issuer = issuer
        self._parties = set(authorized_parties)
        self._leeway = leeway_seconds
        self.verified: TokenCache[dict[str, Any]] = TokenCache()

    async def verify(self, token: str | None) -> dict[str, Any]:
        """The token's claims, or 401 with the reason."""
        if not token:
            raise Unauthorized("A session token is required (Authorization: Bearer ...).")
        cached = self.verified.get(token)
        if cached is not None:
            return cached
        claims = await self._verify(token)
        exp = claims.get("exp")
        if isinstance(exp, int | float):
            until = min(float(exp), time.time() + self._jwks.ttl)
            self.verified.put(token, claims, until=until)
        return claims

    async def _verify(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthorized("The session token is malformed.") from exc
        if header.get("alg") != ALGORITHM:
            raise Unauthorized(f"Only {ALGORITHM} session tokens are accepted.")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise Unauthorized("The session token names no signing key.")
        key = await self._jwks.key(kid)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["sub", "iss", "exp", "iat"], "verify_aud": False},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("The session token has expired.") from exc
        except jwt.ImmatureSignatureError as exc:
            raise Unauthorized("The session token is not valid yet.") from exc
        except jwt.InvalidIssuerError as exc:
            raise Unauthorized("The session token comes from an unknown issuer.") from exc
        except jwt.InvalidSignatureError as exc:
            raise Unauthorized("The session token's signature is not valid.") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"The session token is not valid: {exc}.") from exc
        if self._parties and claims.get("azp") not in self._parties:
            raise Unauthorized("The session token was issued to an unknown party.")
        return claims
