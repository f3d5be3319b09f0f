"""The people directory: a venue's users (staff and clients), their roles, and the rules.

Pure: no I/O. The aggregate's methods validate, change state, and record the events
they cause in ``pending_events``; the repository saves those events in the same
document write as the state (the outbox). Who may see or change what is decided here
too, so that the rules read in one place and are tested without infrastructure.

Rules:

- an email is trimmed and lower-cased, and must look like an address; it is unique in
  its venue (the store's unique index enforces that, not this module);
- a name is trimmed, and a blank one is no name; an image is an http(s) URL;
- ADMIN, SALES, PROJECT_MANAGER and STAFF see the whole directory of their venue;
  a CLIENT sees only themself;
- an ADMIN may change anyone's name, image, role and active flag; anyone else may
  change only their own name and image (sending their current role or active flag
  unchanged is not a change, and is allowed);
- the last active ADMIN of a venue can be neither demoted nor deactivated;
- a person never holds the PARTNER role (a partner app's API key's).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final
from urllib.parse import urlsplit

from gala.contracts.contacts import (
    UserCreated,
    UserDeactivated,
    UserEvent,
    UserReactivated,
    UserRoleChanged,
    UserUpdated,
)
from gala.errors import Conflict, Forbidden, GalaError, InvalidInput, NotFound
from gala.identity import PEOPLE_ROLES, Principal, Role
from gala.values import UNSET, Unset

EMAIL_MAX = 254
NAME_MAX = 200
IMAGE_MAX = 2048
AUTH_SUBJECT_MAX = 255
VENUE_ID_MAX = 128

DIRECTORY_ROLES: Final = frozenset({Role.ADMIN, Role.SALES, Role.PROJECT_MANAGER, Role.STAFF})
"""Roles that may read the whole directory of their venue."""


class PersonRole(StrEnum):
    """The roles a person may hold: every role but PARTNER (a partner app's API key,
    never a user). What the users API accepts and documents."""

    ADMIN = Role.ADMIN.value
    SALES = Role.SALES.value
    PROJECT_MANAGER = Role.PROJECT_MANAGER.value
    STAFF = Role.STAFF.value
    CLIENT = Role.CLIENT.value


_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")


# --- errors -------------------------------------------------------------------------


class UserError(GalaError):
    """Base of the users module's errors (each also derives from a kernel status class)."""


class InvalidUser(UserError, InvalidInput):
    """A value a user cannot have."""


class UserNotFound(UserError, NotFound):
    def __init__(self, detail: str = "No such user in this venue.") -> None:
        super().__init__(detail)


class UserAccessDenied(UserError, Forbidden):
    pass


class UserAlreadyExists(UserError, Conflict):
    """The identity or the email is taken; ``existingId`` names the user holding it."""

    def __init__(self, detail: str, existing_id: str | None) -> None:
        if existing_id is None:
            super().__init__(detail)
        else:
            super().__init__(detail, existingId=existing_id)
        self.existing_id = existing_id


class LastActiveAdmin(UserError, Conflict):
    def __init__(self) -> None:
        super().__init__(
            "This is the venue's last active ADMIN: promote or reactivate another ADMIN first."
        )


class ConcurrentUpdate(UserError, Conflict):
    def __init__(self) -> None:
        super().__init__("The user kept changing while this request applied; try again.")


# --- values -------------------------------------------------------------------------


def normalize_email(value: str) -> str:
    email = value.strip().lower()
    local, _, _domain = email.partition("@")
    if len(email) > EMAIL_MAX or len(local) > 64 or not _EMAIL.match(email):
        raise InvalidUser(f"{value!r} is not a valid email address.")
    return email


def normalize_name(value: str | None) -> str | None:
    if value is None:
        return None
    name = " ".join(value.split())
    if len(name) > NAME_MAX:
        raise InvalidUser(f"A name has at most {NAME_MAX} characters.")
    return name or None


def normalize_image(value: str | None) -> str | None:
    if value is None:
        return None
    url = value.strip()
    if not url:
        return None
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise InvalidUser("The image is not a valid URL.") from exc
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or len(url) > IMAGE_MAX
        or any(c.isspace() for c in url)
    ):
        raise InvalidUser("The image must be an http(s) URL.")
    return url


def _plain_identifier(value: str, what: str, max_length: int) -> str:
    if not value or len(value) > max_length or value != value.strip() or not value.isprintable():
        raise InvalidUser(f"The {what} must be 1 to {max_length} printable characters.")
    return value


def check_auth_subject(value: str) -> str:
    """An identity provider's subject, taken exactly as the provider spells it."""
    return _plain_identifier(value, "authSubject", AUTH_SUBJECT_MAX)


def check_venue_id(value: str) -> str:
    return _plain_identifier(value, "venueId", VENUE_ID_MAX)


def person_role(role: Role | str) -> Role:
    """A role a person may hold; PARTNER (a partner app's key) is refused."""
    try:
        checked = Role(role)
    except ValueError as exc:
        raise InvalidUser(f"{role!r} is not a role.") from exc
    if checked not in PEOPLE_ROLES:
        raise InvalidUser(f"A user cannot have the role {checked.value}: it is a partner app's.")
    return checked


def to_millis(moment: datetime) -> datetime:
    """UTC, truncated to what the store keeps (milliseconds): what is saved is what is read."""
    if moment.tzinfo is None:
        raise InvalidUser("Datetimes need a time zone offset.")
    moment = moment.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


# --- access policy -------------------------------------------------------------------


def ensure_can_list(principal: Principal) -> None:
    if principal.role not in DIRECTORY_ROLES:
        raise UserAccessDenied("Clients cannot list the venue's users.")


def ensure_can_view(principal: Principal, user_id: str) -> None:
    """Checked before loading: a refusal says nothing about whether the user exists."""
    if principal.role not in DIRECTORY_ROLES and principal.user_id != user_id:
        raise UserAccessDenied("Clients can see only themselves.")


def ensure_can_edit(principal: Principal, user_id: str) -> None:
    """Checked before loading: only an ADMIN may change someone else."""
    if principal.role is not Role.ADMIN and principal.user_id != user_id:
        raise UserAccessDenied("Only an ADMIN can change another user.")


# --- the aggregate -------------------------------------------------------------------


@dataclass(frozen=True)
class UserPatch:
    """The fields a request wants changed; ``UNSET`` ones stay as they are."""

    name: str | Unset | None = UNSET
    image: str | Unset | None = UNSET
    role: Role | Unset = UNSET
    active: bool | Unset = UNSET


@dataclass
class User:
    id: str
    venue_id: str
    auth_subject: str
    email: str
    role: Role
    created_at: datetime
    updated_at: datetime
    name: str | None = None
    image: str | None = None
    email_verified: datetime | None = None
    active: bool = True
    version: int = 1
    """Bumped by every save: a save applies only to the version it was computed from."""
    pending_events: list[UserEvent] = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def register(
        cls,
        *,
        venue_id: str,
        auth_subject: str,
        email: str,
        role: Role,
        now: datetime,
        name: str | None = None,
        image: str | None = None,
        email_verified: datetime | None = None,
        user_id: str | None = None,
    ) -> User:
        """A new user of ``venue_id``; records ``UserCreated``."""
        now = to_millis(now)
        user = cls(
            id=user_id or str(uuid.uuid4()),
            venue_id=check_venue_id(venue_id),
            auth_subject=check_auth_subject(auth_subject),
            email=normalize_email(email),
            role=person_role(role),
            name=normalize_name(name),
            image=normalize_image(image),
            email_verified=to_millis(email_verified) if email_verified is not None else None,
            active=True,
            created_at=now,
            updated_at=now,
        )
        user._record(UserCreated, **user._snapshot())
        return user

    @property
    def is_active_admin(self) -> bool:
        return self.active and self.role is Role.ADMIN

    def _target(self, patch: UserPatch) -> tuple[Role, bool]:
        role = self.role if isinstance(patch.role, Unset) else patch.role
        active = self.active if isinstance(patch.active, Unset) else patch.active
        return role, active

    def removes_active_admin(self, patch: UserPatch) -> bool:
        """Whether ``patch`` would leave the venue with one active ADMIN fewer."""
        role, active = self._target(patch)
        return self.is_active_admin and not (active and role is Role.ADMIN)

    def update(
        self,
        patch: UserPatch,
        *,
        actor: Principal,
        now: datetime,
        other_active_admins: int | None = None,
    ) -> list[UserEvent]:
        """Apply ``patch`` on behalf of ``actor``; answers the events it recorded.

        ``other_active_admins`` is how many active ADMINs the venue has besides this
        user; it is needed (and must be counted under the venue's admin guard) only
        when :meth:`removes_active_admin` says so. Nothing changes unless all of the
        patch is allowed and valid.
        """
        if actor.venue_id != self.venue_id:
            raise UserNotFound()
        ensure_can_edit(actor, self.id)
        name = self.name if isinstance(patch.name, Unset) else normalize_name(patch.name)
        image = self.image if isinstance(patch.image, Unset) else normalize_image(patch.image)
        role, active = self._target(patch)
        role = person_role(role)
        if actor.role is not Role.ADMIN and (role is not self.role or active != self.active):
            raise UserAccessDenied("Only an ADMIN can change a role or the active flag.")
        if self.removes_active_admin(patch):
            if other_active_admins is None:
                raise ValueError("count the venue's other active ADMINs before removing one")
            if other_active_admins < 1:
                raise LastActiveAdmin()

        recorded_before = len(self.pending_events)
        if (name, image) != (self.name, self.image):
            self.name, self.image = name, image
            self._record(UserUpdated, **self._snapshot())
        if role is not self.role:
            previous, self.role = self.role, role
            self._record(UserRoleChanged, previous_role=previous, **self._snapshot())
        if active != self.active:
            self.active = active
            self._record(UserDeactivated if not active else UserReactivated, **self._snapshot())
        recorded = self.pending_events[recorded_before:]
        if recorded:
            self.updated_at = max(to_millis(now), self.updated_at)
        return list(recorded)

    def collect_events(self) -> list[UserEvent]:
        """Hand the recorded events over (to be saved with the state) and forget them."""
        events, self.pending_events = self.pending_events, []
        return events

    def _snapshot(self) -> dict[str, object]:
        return {
            "user_id": self.id,
            "venue_id": self.venue_id,
            "email": self.email,
            "name": self.name,
            "image": self.image,
            "role": self.role,
            "active": self.active,
        }

    def _record(self, event_type: type[UserEvent], **values: object) -> None:
        self.pending_events.append(event_type.model_validate(values))
