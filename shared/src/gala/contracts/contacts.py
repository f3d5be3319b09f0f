"""Events the contacts service publishes.

Contacts (leads) on ``gala.contacts.contact`` and users (the people directory: a
venue's staff and its clients) on ``gala.contacts.user``, keyed and ``subject``-ed by
the contact or user id, with the venue in the envelope (``venueid``). Every event but
an erasure carries the record's state *after* the change it announces, so a consumer
can keep its own copy from any one event it reads; when one request changes several
things, their events follow each other in the order the changes were applied, the last
one holding the final state. An erasure carries no personal data at all.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from gala.events.model import Event, Payload
from gala.identity import Role

USER_TOPIC = "gala.contacts.user"
CONTACT_TOPIC = "gala.contacts.contact"


class LeadSource(StrEnum):
    WEBSITE = "WEBSITE"
    FACEBOOK = "FACEBOOK"
    INSTAGRAM = "INSTAGRAM"
    LINKEDIN = "LINKEDIN"
    REFERRAL = "REFERRAL"
    DIRECT = "DIRECT"
    OTHER = "OTHER"


class ContactStatus(StrEnum):
    UNQUALIFIED = "UNQUALIFIED"
    PROSPECT = "PROSPECT"
    LEAD = "LEAD"
    QUALIFIED = "QUALIFIED"
    CUSTOMER = "CUSTOMER"
    LOST = "LOST"


class HeatReason(Payload):
    """One rule's contribution to a contact's lead heat."""

    rule: str
    points: int
    detail: str


class ContactEvent(Event):
    """What every contact event but the erasure carries: the contact after the change."""

    contact_id: str
    venue_id: str
    name: str
    email: str
    phone: str | None = None
    lead_source: LeadSource
    status: ContactStatus
    lead_heat: int


class ContactCreated(ContactEvent, type="gala.contact.created.v1", topic=CONTACT_TOPIC):
    """A lead arrived (entered by staff, imported, or from a web form or lead ad)."""


class ContactUpdated(ContactEvent, type="gala.contact.updated.v1", topic=CONTACT_TOPIC):
    """A contact's details changed."""


class ContactStatusChanged(
    ContactEvent, type="gala.contact.status_changed.v1", topic=CONTACT_TOPIC
):
    """A contact moved in its lifecycle; ``previous_status`` is where it was."""

    previous_status: ContactStatus


class ContactHeatChanged(ContactEvent, type="gala.contact.heat_changed.v1", topic=CONTACT_TOPIC):
    """A contact's lead heat was recomputed to another value, with the reasons."""

    previous_heat: int
    reasons: list[HeatReason]


class ContactErased(Event, type="gala.contact.erased.v1", topic=CONTACT_TOPIC):
    """A person asked to be forgotten: every service must erase what it copied of them.

    Carries no personal data; only the contact's id and venue survive, as a tombstone.
    """

    contact_id: str
    venue_id: str
    erased_at: datetime


CONTACT_EVENTS: tuple[type[Event], ...] = (
    ContactCreated,
    ContactUpdated,
    ContactStatusChanged,
    ContactHeatChanged,
    ContactErased,
)


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
    "CONTACT_EVENTS",
    "CONTACT_TOPIC",
    "USER_EVENTS",
    "USER_TOPIC",
    "ContactCreated",
    "ContactErased",
    "ContactEvent",
    "ContactHeatChanged",
    "ContactStatus",
    "ContactStatusChanged",
    "ContactUpdated",
    "HeatReason",
    "LeadSource",
    "UserCreated",
    "UserDeactivated",
    "UserEvent",
    "UserReactivated",
    "UserRoleChanged",
    "UserUpdated",
]
