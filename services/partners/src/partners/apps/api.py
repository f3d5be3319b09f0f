"""HTTP entry points of partner apps: thin translations to the use cases.

``router`` (``/api/v1/partners/apps``) is for a venue's ADMINs; ``internal_router``
(``/internal/v1/partner-keys``) is the gateway's key resolution, with a service token.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response, status

from gala.api import Cursor, Limit, PageOut, problems
from gala.app import OutboxDep, StoreDep
from gala.errors import Forbidden
from gala.identity import CallingService, CurrentPrincipal
from partners.apps.domain import (
    AppChangedConcurrently,
    AppNotFound,
    AppRevoked,
    InvalidApp,
)
from partners.apps.repository import PartnerAppRepository
from partners.apps.schemas import AppOut, AppWithKeyOut, CreateAppIn, KeyOwnerOut
from partners.apps.service import PartnerAppService

PREFIX = "/api/v1/partners/apps"
INTERNAL_PREFIX = "/internal/v1/partner-keys"


async def get_app_service(store: StoreDep, outbox: OutboxDep) -> PartnerAppService:
    return PartnerAppService(PartnerAppRepository(store, outbox))


Apps = Annotated[PartnerAppService, Depends(get_app_service)]
AppId = Annotated[str, Path(min_length=1, max_length=64)]

router = APIRouter(prefix=PREFIX, tags=["partner apps"])


@router.post("", status_code=status.HTTP_201_CREATED, responses=problems(Forbidden, InvalidApp))
async def create_app(
    principal: CurrentPrincipal, apps: Apps, body: CreateAppIn, response: Response
) -> AppWithKeyOut:
    """Create a partner app of the caller's venue (ADMIN). The answer holds its secret
    API key, shown this once."""
    app, key = await apps.create(principal, body.name, body.description)
    response.headers["Location"] = f"{PREFIX}/{app.id}"
    response.headers["Cache-Control"] = "no-store"
    return AppWithKeyOut.with_key(app, key)


@router.get("", responses=problems(Forbidden, InvalidApp))
async def list_apps(
    principal: CurrentPrincipal, apps: Apps, limit: Limit = 50, cursor: Cursor = None
) -> PageOut[AppOut]:
    """The venue's partner apps, a page at a time (ADMIN); never their keys."""
    items, next_cursor = await apps.page(principal, limit, cursor)
    return PageOut[AppOut](items=[AppOut.of(app) for app in items], next_cursor=next_cursor)


@router.get("/{app_id}", responses=problems(Forbidden, AppNotFound))
async def get_app(principal: CurrentPrincipal, apps: Apps, app_id: AppId) -> AppOut:
    """One partner app of the venue (ADMIN)."""
    return AppOut.of(await apps.get(principal, app_id))


@router.post(
    "/{app_id}/keys/rotate",
    responses=problems(Forbidden, AppNotFound, AppRevoked, AppChangedConcurrently),
)
async def rotate_key(
    principal: CurrentPrincipal, apps: Apps, app_id: AppId, response: Response
) -> AppWithKeyOut:
    """A new secret key, shown this once; the previous key stops working (within the
    gateway's key cache, a few seconds). No overlap."""
    app, key = await apps.rotate_key(principal, app_id)
    response.headers["Cache-Control"] = "no-store"
    return AppWithKeyOut.with_key(app, key)


@router.post("/{app_id}/revoke", responses=problems(Forbidden, AppNotFound, AppChangedConcurrently))
async def revoke_app(principal: CurrentPrincipal, apps: Apps, app_id: AppId) -> AppOut:
    """Revoke the app for good: its key stops working within seconds (ADMIN)."""
    return AppOut.of(await apps.revoke(principal, app_id))


internal_router = APIRouter(prefix=INTERNAL_PREFIX, tags=["partner keys (internal)"])


@internal_router.get("/{key_hash}", responses=problems(AppNotFound, InvalidApp))
async def key_owner(
    _service: CallingService,
    apps: Apps,
    key_hash: Annotated[str, Path(min_length=64, max_length=64)],
) -> KeyOwnerOut:
    """Whose key has this SHA-256 (hex): the app, its venue, whether it is active. The
    gateway asks with the hash, never the key."""
    return KeyOwnerOut.of(await apps.owner_of(key_hash))
