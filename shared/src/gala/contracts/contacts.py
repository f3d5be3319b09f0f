"""Events the contacts service publishes.

Users (the people directory: a venue's staff and its clients) on ``gala.contacts.user``,
keyed and ``subject``-ed by the user id, with the venue in the envelope (``venueid``).
Every user event carries the user's state *after* the change it announces, so a
consumer (projects, chat) can keep its own copy from any one event it reads; when one
request changes several things, their events follow each other in the order the
changes were applied, the last one holding the final state.
"""

from __future__ import annotations

from gala.events.model import Event
from gala.identity import Role

USER_TOPIC = "gala.contacts.user"


class UserEvent(Event):
    """What every user event carries: the user as it is after the change."""

    user_id: str
    venue_id: str
    email: str
    name: str | None = None
    image: str | None = None
    role: Role
    active: bool


class UserCreated(UserEvent, type="gala.user.created.v1", topic=USER_TOPIC):
    """A user joined a venue's directory."""


class UserUpdated(UserEvent, type="gala.user.updated.v1", topic=USER_TOPIC):
    """A user's profile (name, picture) changed."""


class UserRoleChanged(UserEvent, type="gala.user.role_changed.v1", topic=USER_TOPIC):
    """A user was given another role; ``previous_role`` is the one they had."""

    previous_role: Role


class UserDeactivated(UserEvent, type="gala.user.deactivated.v1", topic=USER_TOPIC):
    """A user may no longer sign in or act; their records stay."""


class UserReactivated(UserEvent, type="gala.user.reactivated.v1", topic=USER_TOPIC):
    """A deactivated user may sign in and act again."""


USER_EVENTS: tuple[type[UserEvent], ...] = (
    UserCreated,
    UserUpdated,
    UserRoleChanged,
    UserDeactivated,
    UserReactivated,
)

__all__ = [
    "USER_EVENTS",
    "USER_TOPIC",
    "UserCreated",
    "UserDeactivated",
    "UserEvent",
    "UserReactivated",
    "UserRoleChanged",
    "UserUpdated",
]
