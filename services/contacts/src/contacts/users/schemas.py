"""The users API's request and response bodies: camelCase JSON, ids as ``id``.

Requests refuse unknown fields (a typo must not be silently ignored) and accept the
camelCase names only; what a value must look like beyond its type (an email, a URL) is
the domain's to say.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, Field, StrictBool, field_validator

from contacts.users.domain import (
    AUTH_SUBJECT_MAX,
    VENUE_ID_MAX,
    PersonRole,
    User,
    UserPatch,
)
from contacts.users.service import NewUser
from gala.api import RequestBody, ResponseBody
from gala.identity import Role
from gala.values import UNSET

# Generous bounds on raw input; the domain checks the normalised values precisely.
Email = Annotated[str, Field(min_length=1, max_length=320, examples=["ana@venue.example"])]
Name = Annotated[str, Field(max_length=1000, examples=["Ana Pérez"])]
ImageUrl = Annotated[str, Field(max_length=2048, examples=["https://img.example/ana.png"])]
AuthSubject = Annotated[
    str, Field(min_length=1, max_length=AUTH_SUBJECT_MAX, examples=["user_2abcDEF"])
]
VenueIdField = Annotated[str, Field(min_length=1, max_length=VENUE_ID_MAX)]


# --- public API ----------------------------------------------------------------------


class UserOut(ResponseBody):
    id: str
    auth_subject: str
    email: str
    name: str | None
    image: str | None
    email_verified: datetime | None
    role: PersonRole
    venue_id: str
    active: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            id=user.id,
            auth_subject=user.auth_subject,
            email=user.email,
            name=user.name,
            image=user.image,
            email_verified=user.email_verified,
            role=PersonRole(user.role.value),
            venue_id=user.venue_id,
            active=user.active,
            created_at=user.created_at,
            updated_at=user.updated_at,
        )


class UserPageOut(ResponseBody):
    items: list[UserOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


class CreateUserIn(RequestBody):
    auth_subject: AuthSubject
    email: Email
    role: PersonRole
    name: Name | None = None
    image: ImageUrl | None = None
    email_verified: AwareDatetime | None = None

    def to_new_user(self) -> NewUser:
        return NewUser(
            auth_subject=self.auth_subject,
            email=self.email,
            role=Role(self.role),
            name=self.name,
            image=self.image,
            email_verified=self.email_verified,
        )


class UpdateUserIn(RequestBody):
    """Only the fields sent change; ``null`` clears a name or an image."""

    name: Name | None = None
    image: ImageUrl | None = None
    role: PersonRole | None = None
    active: StrictBool | None = None

    @field_validator("role", "active")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # runs only for fields the request sent: a role or an active flag cannot be cleared
        if value is None:
            raise ValueError("may be omitted but not null")
        return value

    def to_patch(self) -> UserPatch:
        sent = self.model_fields_set
        return UserPatch(
            name=self.name if "name" in sent else UNSET,
            image=self.image if "image" in sent else UNSET,
            role=Role(self.role) if "role" in sent and self.role is not None else UNSET,
            active=self.active if "active" in sent and self.active is not None else UNSET,
        )


# --- internal API --------------------------------------------------------------------


class UserRefOut(ResponseBody):
    """What Gala's own services need to know of a user (the gateway, at log-in)."""

    id: str
    auth_subject: str
    venue_id: str
    role: PersonRole
    active: bool
    email: str
    name: str | None

    @classmethod
    def of(cls, user: User) -> UserRefOut:
        return cls(
            id=user.id,
            auth_subject=user.auth_subject,
            venue_id=user.venue_id,
            role=PersonRole(user.role.value),
            active=user.active,
            email=user.email,
            name=user.name,
        )


class UserRefListOut(ResponseBody):
    items: list[UserRefOut]


class InternalCreateUserIn(RequestBody):
    venue_id: VenueIdField
    auth_subject: AuthSubject
    email: Email
    role: PersonRole
    name: Name | None = None

    def to_new_user(self) -> NewUser:
        return NewUser(
            auth_subject=self.auth_subject, email=self.email, role=Role(self.role), name=self.name
        )
