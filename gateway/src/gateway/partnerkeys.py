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

import httpx

from gala.errors import Unauthorized
from gala.identity import InternalTokens, Principal, Role
from gateway.lookups import ShortCache, internal_get

KEY_PREFIX = "gala_pk_"
KEY_PATTERN = re.compile(r"^gala_pk_[A-Za-z0-9_-]{43}$")
PRINCIPAL_PREFIX = "partner-app:"


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
        self._cache: ShortCache[Principal] = ShortCache(ttl_seconds)

    async def principal_for(self, key: str) -> Principal:
        if not KEY_PATTERN.match(key):
            raise Unauthorized("The partner API key is malformed.")
        hashed = hashlib.sha256(key.encode()).hexdigest()
        cached, principal = self._cache.get(hashed)
        if not cached:
            principal = await self._lookup(hashed)
            self._cache.put(hashed, principal)
        if principal is None:
            raise Unauthorized("The partner API key is unknown or revoked.")
        return principal

    async def _lookup(self, hashed: str) -> Principal | None:
        owner = await internal_get(
            self._partners,
            self._tokens,
            f"/internal/v1/partner-keys/{hashed}",
            what="The partner key directory",
            service="partners",
        )
        if owner is None or not owner.get("active", False):
            return None
        return Principal(
            user_id=f"{PRINCIPAL_PREFIX}{owner['appId']}",
            venue_id=owner["venueId"],
            role=Role.PARTNER,
        )

    def forget(self) -> None:
        self._cache.forget()
