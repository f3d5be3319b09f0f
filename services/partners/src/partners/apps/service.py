"""Use cases of partner apps: create, list, read, rotate the key, revoke; and the
gateway's key resolution."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from gala.identity import Principal, ensure_role
from gala.store import utc_now
from partners.apps.domain import (
    MANAGERS,
    AppChangedConcurrently,
    AppNotFound,
    PartnerApp,
    check_key_hash,
)
from partners.apps.repository import PartnerAppRepository

Clock = Callable[[], datetime]
SAVE_ATTEMPTS = 5


@dataclass(frozen=True)
class KeyOwner:
    """Whose a key is, as the gateway needs it."""

    app_id: str
    venue_id: str
    active: bool


class PartnerAppService:
    def __init__(self, apps: PartnerAppRepository, clock: Clock = utc_now) -> None:
        self._apps = apps
        self._clock = clock

    async def create(
        self, principal: Principal, name: str, description: str | None
    ) -> tuple[PartnerApp, str]:
        ensure_role(principal, MANAGERS, "manage partner apps")
        app, key = PartnerApp.create(
            venue_id=principal.venue_id, name=name, description=description, now=self._clock()
        )
        await self._apps.insert(app)
        return app, key

    async def page(
        self, principal: Principal, limit: int, cursor: str | None
    ) -> tuple[list[PartnerApp], str | None]:
        ensure_role(principal, MANAGERS, "manage partner apps")
        return await self._apps.page(principal.venue_id, limit, cursor)

    async def get(self, principal: Principal, app_id: str) -> PartnerApp:
        ensure_role(principal, MANAGERS, "manage partner apps")
        app = await self._apps.get(principal.venue_id, app_id)
        if app is None:
            raise AppNotFound()
        return app

    async def rotate_key(self, principal: Principal, app_id: str) -> tuple[PartnerApp, str]:
        for _ in range(SAVE_ATTEMPTS):
            app = await self.get(principal, app_id)
            key = app.rotate_key(self._clock())
            if await self._apps.save(app):
                return app, key
        raise AppChangedConcurrently()

    async def revoke(self, principal: Principal, app_id: str) -> PartnerApp:
        for _ in range(SAVE_ATTEMPTS):
            app = await self.get(principal, app_id)
            app.revoke(self._clock())
            if not app.pending_events or await self._apps.save(app):
                return app
        raise AppChangedConcurrently()

    async def owner_of(self, hashed: str) -> KeyOwner:
        """Whose key hashes to ``hashed`` (the gateway asks; it never sends the key)."""
        app = await self._apps.by_key_hash(check_key_hash(hashed))
        if app is None:
            raise AppNotFound("No partner app has this key.")
        return KeyOwner(app_id=app.id, venue_id=app.venue_id, active=app.active)
