"""Who a session token's subject is: role and venue, from the contacts service."""

from __future__ import annotations

from urllib.parse import quote

import httpx

from gala.errors import Forbidden
from gala.identity import PEOPLE_ROLES, InternalTokens, Principal
from gateway.lookups import ShortCache, internal_get

NEGATIVE_CACHE_SECONDS = 5.0


class UserDirectory:
    """Resolves ``sub`` to a :class:`Principal`, caching answers briefly."""

    def __init__(
        self, contacts: httpx.AsyncClient, tokens: InternalTokens, *, ttl_seconds: float = 30.0
    ) -> None:
        self._contacts = contacts
        self._tokens = tokens
        self._cache: ShortCache[Principal] = ShortCache(ttl_seconds, NEGATIVE_CACHE_SECONDS)

    async def principal_for(self, subject: str) -> Principal:
        cached, principal = self._cache.get(subject)
        if not cached:
            principal = await self._lookup(subject)
            self._cache.put(subject, principal)
        if principal is None:
            raise Forbidden("No active Gala user matches this login.")
        return principal

    async def _lookup(self, subject: str) -> Principal | None:
        user = await internal_get(
            self._contacts,
            self._tokens,
            f"/internal/v1/users/by-subject/{quote(subject, safe='')}",
            what="The user directory",
            service="contacts",
        )
        if user is None or not user.get("active", False):
            return None
        principal = Principal(user_id=user["id"], venue_id=user["venueId"], role=user["role"])
        if principal.role not in PEOPLE_ROLES:
            return None  # a login is a person: never a partner app's role
        return principal

    def forget(self, subject: str | None = None) -> None:
        self._cache.forget(subject)
