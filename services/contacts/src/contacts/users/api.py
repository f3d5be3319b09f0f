"""HTTP entry points of the people directory: thin translations to the use cases.

``router`` is the public API (``/api/v1/users``, reached through the gateway with the
caller's identity); ``internal_router`` (``/internal/v1/users``) is for Gala's own
services, which call it with a service token, never a user's.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response, status

from contacts.users.domain import (
    ConcurrentUpdate,
    InvalidUser,
    LastActiveAdmin,
    PersonRole,
    UserAccessDenied,
    UserAlreadyExists,
    UserNotFound,
)
from contacts.users.repository import AdminGuardBusy, UserRepository
from contacts.users.schemas import (
    CreateUserIn,
    InternalCreateUserIn,
    UpdateUserIn,
    UserOut,
    UserPageOut,
    UserRefListOut,
    UserRefOut,
)
from contacts.users.service import UserService
from gala.api import problems
from gala.app import OutboxDep, StoreDep
from gala.identity import CallingService, CurrentPrincipal, Role

PUBLIC_PREFIX = "/api/v1/users"
INTERNAL_PREFIX = "/internal/v1/users"


async def get_user_service(store: StoreDep, outbox: OutboxDep) -> UserService:
    return UserService(UserRepository(store, outbox))


Users = Annotated[UserService, Depends(get_user_service)]


router = APIRouter(prefix=PUBLIC_PREFIX, tags=["users"])


@router.get("/me", responses=problems(UserNotFound))
async def get_me(principal: CurrentPrincipal, users: Users) -> UserOut:
    """The caller's own user."""
    return UserOut.of(await users.me(principal))


@router.get("", responses=problems(UserAccessDenied, InvalidUser))
async def list_users(
    principal: CurrentPrincipal,
    users: Users,
    role: PersonRole | None = None,
    active: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> UserPageOut:
    """The venue's users in a stable order, a page at a time (not for CLIENTs)."""
    items, next_cursor = await users.list_users(
        principal,
        role=Role(role) if role is not None else None,
        active=active,
        limit=limit,
        cursor=cursor,
    )
    return UserPageOut(items=[UserOut.of(user) for user in items], next_cursor=next_cursor)


@router.get("/{user_id}", responses=problems(UserAccessDenied, UserNotFound))
async def get_user(principal: CurrentPrincipal, users: Users, user_id: str) -> UserOut:
    """One user of the venue; a CLIENT may read only themself."""
    return UserOut.of(await users.get(principal, user_id))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=problems(UserAccessDenied, UserAlreadyExists, InvalidUser),
)
async def create_user(
    principal: CurrentPrincipal, users: Users, body: CreateUserIn, response: Response
) -> UserOut:
    """Add a user to the caller's venue (ADMIN only)."""
    user = await users.create(principal, body.to_new_user())
    response.headers["Location"] = f"{PUBLIC_PREFIX}/{user.id}"
    return UserOut.of(user)


@router.patch(
    "/{user_id}",
    responses=problems(
        UserAccessDenied,
        UserNotFound,
        LastActiveAdmin,
        ConcurrentUpdate,
        InvalidUser,
        AdminGuardBusy,
    ),
)
async def update_user(
    principal: CurrentPrincipal, users: Users, user_id: str, body: UpdateUserIn
) -> UserOut:
    """Change a user: an ADMIN anything of anyone; others their own name and image."""
    return UserOut.of(await users.update(principal, user_id, body.to_patch()))


internal_router = APIRouter(prefix=INTERNAL_PREFIX, tags=["users (internal)"])


@internal_router.get("/by-subject/{auth_subject:path}", responses=problems(UserNotFound))
async def get_by_subject(
    _service: CallingService,
    users: Users,
    auth_subject: Annotated[str, Path(min_length=1, max_length=255)],
) -> UserRefOut:
    """Who an identity provider's subject is (the gateway asks at each new log-in)."""
    return UserRefOut.of(await users.by_auth_subject(auth_subject))


@internal_router.get("", responses=problems(InvalidUser))
async def find_by_email(
    _service: CallingService,
    users: Users,
    email: Annotated[str, Query(min_length=1, max_length=320)],
    venue_id: Annotated[str | None, Query(alias="venueId", max_length=128)] = None,
) -> UserRefListOut:
    """The users with an email, in one venue or in all (dev tooling)."""
    found = await users.with_email(email, venue_id)
    return UserRefListOut(items=[UserRefOut.of(user) for user in found])


@internal_router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=problems(UserAlreadyExists, InvalidUser),
)
async def create_for_venue(
    _service: CallingService, users: Users, body: InternalCreateUserIn
) -> UserOut:
    """Add a user to any venue (the ops tool adds a venue's first ADMIN this way)."""
    return UserOut.of(await users.create_for_venue(body.venue_id, body.to_new_user()))
