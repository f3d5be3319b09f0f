"""Optimistic concurrency: read, decide, save only if nobody saved meanwhile, else again.

Every aggregate here is one document with a ``version``; a save names the version it
was computed from and fails when another writer got there first. The caller re-reads
and re-decides, after a short random pause that grows with each attempt::

    async for _ in save_attempts():
        thing = await repository.get(...)
        thing.change(...)
        if await repository.save(thing):
            return thing
    raise ThingChangedConcurrently()
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

SAVE_ATTEMPTS: Final = 10


async def save_attempts(limit: int = SAVE_ATTEMPTS) -> AsyncIterator[int]:
    """Attempt numbers from 0, with a jittered, growing pause before each retry."""
    for attempt in range(limit):
        if attempt:
            await asyncio.sleep(random.uniform(0, 0.005 * 2 ** min(attempt - 1, 6)))
        yield attempt


class KeyedLocks:
    """In-process locks by key (e.g. an aggregate's id).

    Changes of one busy aggregate (many people reordering one project's tasks) queue up
    in this process instead of racing each other through re-reads; other replicas still
    race, and the version check settles those. A lock is forgotten when nobody holds or
    waits for it.
    """

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] = self._users.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._users[key] -= 1
            if not self._users[key]:
                del self._users[key], self._locks[key]
