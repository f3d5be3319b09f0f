"""Partner apps' API keys (``Authorization: Bearer gala_pk_...``), resolved through the
partners service and cached briefly.

The gateway sends the partners service the key's SHA-256, never the key. An answer is
cached ``GALA_AUTH_PARTNER_KEY_CACHE_SECONDS`` (5 s by default): a revoked or rotated
key stops working within that time on every replica. A key works on partner routes only
(``/api/v1/partners/...``, ``/api/v1/events...``); elsewhere it is no session (401).
The forwarded principal: role PARTNER, the key's venue, user ``partner-app:<app id>``.
"""

from __future__ import annotations

import hashlib
import re
import time

import httpx

from gala.errors import ServiceUnavailable, Unauthorized
from gala.identity import IDENTITY_HEADER, InternalTokens, Principal, Role

KEY_PREFIX = "gala_pk_"
KEY_PATTERN = re.compile(r"^gala_pk_[A-Za-z0-9_-]{43}$")
PRINCIPAL_PREFIX = "partner-app:"
MAX_CACHED = 10_000


def is_partner_key(token: str | None) -> bool:
    """Whether a bearer token is meant as a partner key (rather than a session token)."""
    return token is not None and token.startswith(KEY_PREFIX)


class PartnerKeys:
    """Resolves a partner key to its app's :class:`Principal`, caching answers briefly."""

    def __init__(
        self, partners: httpx.AsyncClient, tokens: InternalTokens, *, ttl_seconds: float = 5.0
    ) -> None:
        self._partners = partners
        self._tokens = tokens
        self._ttl = ttl_seconds
        self._cache: dict[str, tuple[float, Principal | None]] = {}

    async def principal_for(self, key: str) -> Principal:
        if not KEY_PATTERN.match(key):
            raise Unauthorized("The partner API key is malformed.")
        hashed = hashlib.sha256(key.encode()).hexdigest()
        now = time.monotonic()
        cached = self._cache.get(hashed)
        if cached is not None and cached[0] > now:
            principal = cached[1]
        else:
            principal = await self._lookup(hashed)
            if len(self._cache) >= MAX_CACHED:
                self._evict(now)
            self._cache[hashed] = (now + self._ttl, principal)
        if principal is None:
            raise Unauthorized("The partner API key is unknown or revoked.")
        return principal

    async def _lookup(self, hashed: str) -> Principal | None:
        try:
            response = await self._partners.get(
                f"/internal/v1/partner-keys/{hashed}",
                headers={IDENTITY_HEADER: self._tokens.issue_for_service("gateway")},
            )
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(
                "Partner keys cannot be checked (partners service unavailable).",
                service="partners",
            ) from exc
        if response.status_code == httpx.codes.NOT_FOUND:
            return None
        if response.status_code != httpx.codes.OK:
            raise ServiceUnavailable(
                f"The partners service answered {response.status_code}.", service="partners"
            )
        owner = response.json()
        if not owner.get("active", False):
            return None
        return Principal(
            user_id=f"{PRINCIPAL_PREFIX}{owner['appId']}",
            venue_id=owner["venueId"],
            role=Role.PARTNER,
        )

    def _evict(self, now: float) -> None:
        self._cache = {key: entry for key, entry in self._cache.items() if entry[0] > now}
        if len(self._cache) >= MAX_CACHED:
            self._cache.clear()

    def forget(self) -> None:
        self._cache.clear()
