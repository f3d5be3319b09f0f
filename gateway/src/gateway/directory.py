"""Who a session token's subject is: role and venue, from the contacts service."""

from __future__ import annotations

import time
from urllib.parse import quote

import httpx

from gala.errors import Forbidden, ServiceUnavailable
from gala.identity import IDENTITY_HEADER, PEOPLE_ROLES, InternalTokens, Principal

NEGATIVE_CACHE_SECONDS = 5.0


class UserDirectory:
    """Resolves ``sub`` to a :class:`Principal`, caching answers briefly."""

    def __init__(
        self, contacts: httpx.AsyncClient, tokens: InternalTokens, *, ttl_seconds: float = 30.0
    ) -> None:
        self._contacts = contacts
        self._tokens = tokens
        self._ttl = ttl_seconds
        self._cache: dict[str, tuple[float, Principal | None]] = {}

    async def principal_for(self, subject: str) -> Principal:
        cached = self._cache.get(subject)
        if cached is not None and cached[0] > time.monotonic():
            principal = cached[1]
        else:
            principal = await self._lookup(subject)
            ttl = self._ttl if principal is not None else min(self._ttl, NEGATIVE_CACHE_SECONDS)
            self._cache[subject] = (time.monotonic() + ttl, principal)
        if principal is None:
            raise Forbidden("No active Gala user matches this login.")
        return principal

    async def _lookup(self, subject: str) -> Principal | None:
        try:
            response = await self._contacts.get(
                f"/internal/v1/users/by-subject/{quote(subject, safe='')}",
                headers={IDENTITY_HEADER: self._tokens.issue_for_service("gateway")},
            )
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(
                "The user directory (contacts service) is unavailable.", service="contacts"
            ) from exc
        if response.status_code == httpx.codes.NOT_FOUND:
            return None
        if response.status_code != httpx.codes.OK:
            raise ServiceUnavailable(
                f"The user directory answered {response.status_code}.", service="contacts"
            )
        user = response.json()
        if not user.get("active", False):
            return None
        principal = Principal(user_id=user["id"], venue_id=user["venueId"], role=user["role"])
        if principal.role not in PEOPLE_ROLES:
            return None  # a login is a person: never a partner app's role
        return principal

    def forget(self, subject: str | None = None) -> None:
        if subject is None:
            self._cache.clear()
        else:
            self._cache.pop(subject, None)
