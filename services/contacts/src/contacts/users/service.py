"""Use cases of the people directory: load, let the domain decide, save (events ride along).

Every use case for a request is scoped to the caller's venue: a user of another venue
is "not found", never "forbidden". The internal use cases (``for_service``) serve
Gala's own processes (the gateway's log-in, the ops and dev tools) across venues.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from contacts.users.domain import (
    ConcurrentUpdate,
    User,
    UserAccessDenied,
    UserAlreadyExists,
    UserNotFound,
    UserPatch,
    check_venue_id,
    ensure_can_edit,
    ensure_can_list,
    ensure_can_view,
    normalize_email,
)
from contacts.users.repository import UserRepository
from gala.identity import Principal, Role

Clock = Callable[[], datetime]

SAVE_ATTEMPTS = 5
"""How often a change is recomputed when the user changed under it before giving up."""

EMAIL_LOOKUP_LIMIT = 100


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class NewUser:
    auth_subject: str
    email: str
    role: Role
    name: str | None = None
    image: str | None = None
    email_verified: datetime | None = None


class UserService:
    def __init__(self, repository: UserRepository, clock: Clock = utc_now) -> None:
        self._users = repository
        self._clock = clock

    # --- for a venue's users (through the gateway) ------------------------------------

    async def me(self, principal: Principal) -> User:
        return await self._load(principal.venue_id, principal.user_id)

    async def get(self, principal: Principal, user_id: str) -> User:
        ensure_can_view(principal, user_id)
        return await self._load(principal.venue_id, user_id)

    async def list_users(
        self,
        principal: Principal,
        *,
        role: Role | None = None,
        active: bool | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> tuple[list[User], str | None]:
        ensure_can_list(principal)
        return await self._users.page(
            principal.venue_id, role=role, active=active, limit=limit, cursor=cursor
        )

    async def create(self, principal: Principal, new: NewUser) -> User:
        if principal.role is not Role.ADMIN:
            raise UserAccessDenied("Only an ADMIN can add users.")
        return await self._create(principal.venue_id, new, reveal_other_venues=False)

    async def update(self, principal: Principal, user_id: str, patch: UserPatch) -> User:
        ensure_can_edit(principal, user_id)
        for _ in range(SAVE_ATTEMPTS):
            user = await self._load(principal.venue_id, user_id)
            if user.removes_active_admin(patch):
                async with self._users.admin_guard(user.venue_id):
                    others = await self._users.count_other_active_admins(user.venue_id, user.id)
                    user.update(
                        patch, actor=principal, now=self._clock(), other_active_admins=others
                    )
                    saved = await self._users.save(user)
            else:
                user.update(patch, actor=principal, now=self._clock())
                saved = await self._users.save(user)
            if saved:
                return user
        raise ConcurrentUpdate()

    # --- for Gala's own services (internal API) ----------------------------------------

    async def by_auth_subject(self, auth_subject: str) -> User:
        user = await self._users.by_auth_subject(auth_subject)
        if user is None:
            raise UserNotFound("No user has this authSubject.")
        return user

    async def with_email(self, email: str, venue_id: str | None = None) -> list[User]:
        email = normalize_email(email)
        if venue_id is None:
            return await self._users.with_email(email, EMAIL_LOOKUP_LIMIT)
        user = await self._users.by_email(check_venue_id(venue_id), email)
        return [user] if user is not None else []

    async def create_for_venue(self, venue_id: str, new: NewUser) -> User:
        return await self._create(venue_id, new, reveal_other_venues=True)

    # --- shared -----------------------------------------------------------------------

    async def _load(self, venue_id: str, user_id: str) -> User:
        user = await self._users.get(venue_id, user_id)
        if user is None:
            raise UserNotFound()
        return user

    async def _create(self, venue_id: str, new: NewUser, *, reveal_other_venues: bool) -> User:
        user = User.register(
            venue_id=venue_id,
            auth_subject=new.auth_subject,
            email=new.email,
            role=new.role,
            name=new.name,
            image=new.image,
            email_verified=new.email_verified,
            now=self._clock(),
        )
        if await self._users.add(user):
            return user
        raise await self._conflict(user, reveal_other_venues=reveal_other_venues)

    async def _conflict(self, user: User, *, reveal_other_venues: bool) -> UserAlreadyExists:
        """Which user holds what ``user`` wanted (the unique index said only "taken").

        A venue's ADMIN learns the id of a user of their own venue only: that an
        identity is taken elsewhere is all they learn about another venue.
        """
        by_subject = await self._users.by_auth_subject(user.auth_subject)
        if by_subject is not None and (reveal_other_venues or by_subject.venue_id == user.venue_id):
            return UserAlreadyExists("A user with this authSubject exists.", by_subject.id)
        by_email = await self._users.by_email(user.venue_id, user.email)
        if by_email is not None:
            return UserAlreadyExists("A user with this email exists in the venue.", by_email.id)
        if by_subject is not None:
            return UserAlreadyExists("This authSubject belongs to a user of another venue.", None)
        return UserAlreadyExists("A user with this authSubject or email exists.", None)
