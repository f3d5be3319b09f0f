"""What the gateway asks other services about its callers (a login's user, a partner
key's app): an internal call with the gateway's service token, and a short cache of the
answers, so that a change (a deactivated user, a revoked key) reaches every replica
within the cache time."""

from __future__ import annotations

import time
from typing import Any, Generic, TypeVar

import httpx

from gala.errors import ServiceUnavailable
from gala.identity import IDENTITY_HEADER, InternalTokens

V = TypeVar("V")
MAX_CACHED = 10_000


class ShortCache(Generic[V]):
    """Answers kept ``ttl`` seconds (a miss, ``None``, for at most ``miss_ttl``), at
    most :data:`MAX_CACHED` of them."""

    def __init__(self, ttl: float, miss_ttl: float | None = None) -> None:
        self.ttl = ttl
        self.miss_ttl = ttl if miss_ttl is None else min(ttl, miss_ttl)
        self._entries: dict[str, tuple[float, V | None]] = {}

    def get(self, key: str) -> tuple[bool, V | None]:
        """(whether ``key`` is cached, its answer)."""
        entry = self._entries.get(key)
        if entry is None or entry[0] <= time.monotonic():
            return False, None
        return True, entry[1]

    def put(self, key: str, value: V | None) -> None:
        now = time.monotonic()
        if len(self._entries) >= MAX_CACHED:
            self._entries = {k: e for k, e in self._entries.items() if e[0] > now}
            if len(self._entries) >= MAX_CACHED:
                self._entries.clear()
        ttl = self.ttl if value is not None else self.miss_ttl
        self._entries[key] = (now + ttl, value)

    def forget(self, key: str | None = None) -> None:
        if key is None:
            self._entries.clear()
        else:
            self._entries.pop(key, None)


async def internal_get(
    client: httpx.AsyncClient, tokens: InternalTokens, path: str, *, what: str, service: str
) -> dict[str, Any] | None:
    """``GET path`` on another service as the gateway: its JSON, ``None`` for 404, and
    503 naming ``service`` when it cannot be reached or answers anything else."""
    try:
        response = await client.get(
            path, headers={IDENTITY_HEADER: tokens.issue_for_service("gateway")}
        )
    except httpx.HTTPError as exc:
        raise ServiceUnavailable(
            f"{what} ({service} service) is unavailable.", service=service
        ) from exc
    if response.status_code == httpx.codes.NOT_FOUND:
        return None
    if response.status_code != httpx.codes.OK:
        raise ServiceUnavailable(f"{what} answered {response.status_code}.", service=service)
    found: dict[str, Any] = response.json()
    return found
