"""The projects service's own copy of the people it needs: the venue's users and the
e-mail addresses of its contacts, fed by the contacts service's events.

It answers, without calling the contacts service: may this user be given a task (an
active user of the venue), and which CLIENT users are the client of a contact (the
same e-mail address in the same venue)? A copy keeps the newest state by event time,
so a late redelivery of an older event changes nothing; an erased contact stays erased.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gala.errors import GalaError, InvalidInput
from gala.identity import Role


class PeopleError(GalaError):
    """Base of the people module's errors."""


class UnknownAssignee(PeopleError, InvalidInput):
    def __init__(self, user_id: str, why: str = "is not an active user of the venue") -> None:
        super().__init__(f"The assignee {user_id!r} {why}.", assigneeId=user_id)


class UnknownClient(PeopleError, InvalidInput):
    def __init__(self, user_id: str) -> None:
        super().__init__(
            f"The user {user_id!r} is not an active CLIENT user of the venue.", userId=user_id
        )


@dataclass(frozen=True)
class UserCopy:
    id: str
    venue_id: str
    email: str
    role: Role
    active: bool
    as_of: datetime

    @property
    def is_client(self) -> bool:
        return self.role is Role.CLIENT


@dataclass(frozen=True)
class ContactCopy:
    id: str
    venue_id: str
    email: str | None
    erased: bool
    as_of: datetime


def normalize_email(email: str) -> str:
    return email.strip().lower()
