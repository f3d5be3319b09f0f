"""A venue's contacts (leads): who they are, where they are in the lifecycle, how hot.

Pure: no I/O. Methods validate, change state and record the events they cause in
``pending_events``; the repository saves those in the same write as the state.

Rules:

- email is trimmed and lower-cased and unique per venue (a unique index enforces it);
  a phone is loosely checked (7 to 15 digits, the usual punctuation) and kept as
  ``+`` and digits;
- the lifecycle runs UNQUALIFIED -> PROSPECT -> LEAD -> QUALIFIED -> CUSTOMER, one step
  at a time, and LOST is reachable from any open state (all but CUSTOMER); any other
  move is an invalid jump, allowed to an ADMIN only;
- opportunities move contacts on their own: a new one makes the contact at least a
  LEAD (and reopens a LOST one), a won one makes it a CUSTOMER, a lost one makes it
  LOST when it has no other open opportunity and is not a customer;
- lead heat is recomputed whenever one of its signals changes (see ``heat.py``);
- a known contact who comes back through the website form changes none of its
  details (a public form proves nothing about who sent it): the inquiry goes on its
  timeline and counts towards its heat;
- custom fields and social profiles are kept exactly as given, up to a size limit;
- erasure (a GDPR request) forgets every personal detail and leaves a tombstone; an
  erased contact changes no more.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from contacts.leads.heat import OpenOpportunity, Signals, compute
from contacts.users.domain import InvalidUser
from contacts.users.domain import normalize_email as _user_email
from gala.contracts.contacts import (
    ContactCreated,
    ContactErased,
    ContactEvent,
    ContactHeatChanged,
    ContactStatus,
    ContactStatusChanged,
    ContactUpdated,
    HeatReason,
    LeadSource,
)
from gala.contracts.pipeline import OpportunityEvent, OpportunityOutcome
from gala.errors import Conflict, GalaError, InvalidInput, NotFound
from gala.events.model import Event
from gala.identity import Role
from gala.values import UNSET, Unset, json_object

NAME_MAX = 200
EXTRA_MAX_BYTES = 16_384
"""The size limit of custom fields, and of social profiles, as JSON."""

LIFECYCLE: Final = (
    ContactStatus.UNQUALIFIED,
    ContactStatus.PROSPECT,
    ContactStatus.LEAD,
    ContactStatus.QUALIFIED,
    ContactStatus.CUSTOMER,
)
OPEN_STATUSES: Final = frozenset(LIFECYCLE[:-1])
_PHONE_CHARS = re.compile(r"^\+?[0-9 ()./-]+$")


class ContactError(GalaError):
    """Base of the leads module's errors."""


class InvalidContact(ContactError, InvalidInput):
    pass


class ContactNotFound(ContactError, NotFound):
    def __init__(self) -> None:
        super().__init__("No such contact in this venue.")


class InvalidTransition(ContactError, Conflict):
    pass


class ContactAlreadyExists(ContactError, Conflict):
    def __init__(self, existing_id: str) -> None:
        super().__init__("A contact of this venue has this email already.", existingId=existing_id)


class ContactChangedConcurrently(ContactError, Conflict):
    def __init__(self) -> None:
        super().__init__("The contact kept changing while this change was applied; try again.")


def normalize_email(value: str) -> str:
    try:
        return _user_email(value)
    except InvalidUser as exc:
        raise InvalidContact(exc.detail) from exc


def normalize_name(value: str) -> str:
    name = " ".join(value.split())
    if not name:
        raise InvalidContact("A contact needs a name.")
    if len(name) > NAME_MAX:
        raise InvalidContact(f"A name has at most {NAME_MAX} characters.")
    return name


def normalize_phone(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    digits = re.sub(r"\D", "", value)
    if not _PHONE_CHARS.match(value.strip()) or not 7 <= len(digits) <= 15:
        raise InvalidContact(f"{value!r} does not look like a phone number.")
    return ("+" if value.strip().startswith("+") else "") + digits


def check_extra(value: Any, what: str) -> Any:
    """Custom fields and social profiles: any JSON object, kept as given, size-limited."""
    try:
        return json_object(value, what, EXTRA_MAX_BYTES)
    except InvalidInput as exc:
        raise InvalidContact(exc.detail) from None


@dataclass(frozen=True)
class ContactPatch:
    """A change of details; UNSET fields are left alone."""

    name: str | Unset = UNSET
    email: str | Unset = UNSET
    phone: str | Unset | None = UNSET
    lead_source: LeadSource | Unset = UNSET
    social_profiles: dict[str, Any] | Unset | None = UNSET
    custom_fields: dict[str, Any] | Unset | None = UNSET


@dataclass(frozen=True)
class TrackedOpportunity:
    opportunity_id: str
    outcome: OpportunityOutcome
    event_date: datetime | None = None
    guest_count: int | None = None
    value: Decimal | None = None
    currency: str | None = None
    name: str | None = None
    stage: str | None = None


@dataclass
class Contact:
    id: str
    venue_id: str
    name: str
    email: str
    phone: str | None
    lead_source: LeadSource
    status: ContactStatus
    created_at: datetime
    updated_at: datetime
    lead_heat: int = 0
    heat_reasons: tuple[HeatReason, ...] = ()
    social_profiles: dict[str, Any] | None = None
    custom_fields: dict[str, Any] | None = None
    opportunities: tuple[TrackedOpportunity, ...] = ()
    client_messages: int = 0
    documents_signed: int = 0
    payments_paid: int = 0
    inquiries: int = 0
    erased_at: datetime | None = None
    version: int = 1
    pending_events: list[Event] = field(default_factory=list)

    # --- creation ---------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        *,
        venue_id: str,
        name: str,
        email: str,
        now: datetime,
        phone: str | None = None,
        lead_source: LeadSource = LeadSource.OTHER,
        status: ContactStatus = ContactStatus.UNQUALIFIED,
        social_profiles: dict[str, Any] | None = None,
        custom_fields: dict[str, Any] | None = None,
        contact_id: str | None = None,
    ) -> Contact:
        if status == ContactStatus.LOST:
            raise InvalidContact("A new contact cannot start LOST.")
        contact = cls(
            id=contact_id or str(uuid.uuid4()),
            venue_id=venue_id,
            name=normalize_name(name),
            email=normalize_email(email),
            phone=normalize_phone(phone),
            lead_source=lead_source,
            status=status,
            created_at=now,
            updated_at=now,
            social_profiles=check_extra(social_profiles, "socialProfiles"),
            custom_fields=check_extra(custom_fields, "customFields"),
        )
        contact._recompute_heat(now, announce=False)
        contact._record(ContactCreated)
        return contact

    # --- staff changes ----------------------------------------------------------------

    @property
    def erased(self) -> bool:
        return self.erased_at is not None

    def update(self, patch: ContactPatch, now: datetime) -> None:
        self._ensure_not_erased()
        before = self._details()
        if not isinstance(patch.name, Unset):
            self.name = normalize_name(patch.name)
        if not isinstance(patch.email, Unset):
            self.email = normalize_email(patch.email)
        if not isinstance(patch.phone, Unset):
            self.phone = normalize_phone(patch.phone)
        if not isinstance(patch.lead_source, Unset):
            self.lead_source = patch.lead_source
        if not isinstance(patch.social_profiles, Unset):
            self.social_profiles = check_extra(patch.social_profiles, "socialProfiles")
        if not isinstance(patch.custom_fields, Unset):
            self.custom_fields = check_extra(patch.custom_fields, "customFields")
        if self._details() == before:
            return
        self.updated_at = now
        self._record(ContactUpdated)
        self._recompute_heat(now)

    def move_to(self, status: ContactStatus, *, role: Role, now: datetime) -> None:
        """A staff member moves the contact; only an ADMIN may jump or go back."""
        self._ensure_not_erased()
        if status == self.status:
            return
        if not self._is_step(status) and role != Role.ADMIN:
            raise InvalidTransition(
                f"A contact cannot go from {self.status.value} to {status.value}"
                " (only an ADMIN may make that jump).",
                fromStatus=self.status.value,
                toStatus=status.value,
            )
        self._set_status(status, now)

    def _is_step(self, status: ContactStatus) -> bool:
        if status == ContactStatus.LOST:
            return self.status in OPEN_STATUSES
        if self.status not in LIFECYCLE or status not in LIFECYCLE:
            return False
        return LIFECYCLE.index(status) == LIFECYCLE.index(self.status) + 1

    # --- what other services tell us --------------------------------------------------

    def apply_opportunity(self, event: OpportunityEvent, now: datetime) -> None:
        """Track one of the contact's opportunities and follow its outcome."""
        if self.erased:
            return
        tracked = TrackedOpportunity(
            opportunity_id=event.opportunity_id,
            outcome=event.outcome,
            event_date=event.event_date,
            guest_count=event.guest_count,
            value=event.value,
            currency=event.currency,
            name=event.name,
            stage=event.stage,
        )
        others = tuple(o for o in self.opportunities if o.opportunity_id != event.opportunity_id)
        self.opportunities = (*others, tracked)
        if event.outcome == OpportunityOutcome.WON:
            self._set_status(ContactStatus.CUSTOMER, now)
        elif event.outcome == OpportunityOutcome.LOST:
            still_open = any(o.outcome == OpportunityOutcome.OPEN for o in others)
            if not still_open and self.status != ContactStatus.CUSTOMER:
                self._set_status(ContactStatus.LOST, now)
        elif self.status == ContactStatus.LOST or (
            self.status in LIFECYCLE
            and LIFECYCLE.index(self.status) < LIFECYCLE.index(ContactStatus.LEAD)
        ):
            self._set_status(ContactStatus.LEAD, now)
        self._recompute_heat(now)

    def set_engagement(self, *, messages: int, signed: int, paid: int, now: datetime) -> None:
        """The client's engagement so far, counted from the contact's timeline.

        Absolute counts, not increments: applying the same counts again changes nothing,
        so a redelivered event cannot count twice.
        """
        if self.erased:
            return
        self.client_messages, self.documents_signed, self.payments_paid = messages, signed, paid
        self._recompute_heat(now)

    def count_inquiries(self, inquiries: int, now: datetime) -> None:
        """How many times the contact came back with a new inquiry, counted from its
        timeline. Inquiries only ever add up (until erasure, after which nothing
        changes), so the larger count wins: a redelivered or a late count never lowers it.
        """
        if self.erased or inquiries <= self.inquiries:
            return
        self.inquiries = inquiries
        self._recompute_heat(now)

    # --- erasure ----------------------------------------------------------------------

    def erase(self, now: datetime) -> None:
        """Forget the person (GDPR): keep only a tombstone, tell every service."""
        if self.erased:
            return
        self.name, self.email, self.phone = "", "", None
        self.social_profiles = self.custom_fields = None
        self.opportunities = tuple(replace(o, name=None) for o in self.opportunities)
        self.erased_at = self.updated_at = now
        self.pending_events.append(
            ContactErased(contact_id=self.id, venue_id=self.venue_id, erased_at=now)
        )

    # --- internals --------------------------------------------------------------------

    def signals(self) -> Signals:
        return Signals(
            source=self.lead_source,
            opportunities=tuple(
                OpenOpportunity(o.opportunity_id, o.event_date, o.guest_count, o.value, o.currency)
                for o in self.opportunities
                if o.outcome != OpportunityOutcome.LOST
            ),
            client_messages=self.client_messages,
            documents_signed=self.documents_signed,
            payments_paid=self.payments_paid,
            inquiries=self.inquiries,
        )

    def _recompute_heat(self, now: datetime, *, announce: bool = True) -> None:
        heat = compute(self.signals(), now)
        previous = self.lead_heat
        self.lead_heat, self.heat_reasons = heat.value, heat.reasons
        if announce and heat.value != previous:
            self.updated_at = now
            self._record(ContactHeatChanged, previous_heat=previous, reasons=list(heat.reasons))

    def _set_status(self, status: ContactStatus, now: datetime) -> None:
        if status == self.status:
            return
        previous, self.status, self.updated_at = self.status, status, now
        self._record(ContactStatusChanged, previous_status=previous)

    def _ensure_not_erased(self) -> None:
        if self.erased:
            raise ContactNotFound()

    def _details(self) -> tuple[Any, ...]:
        return (
            self.name,
            self.email,
            self.phone,
            self.lead_source,
            self.social_profiles,
            self.custom_fields,
        )

    def _record(self, event_type: type[ContactEvent], **extra: Any) -> None:
        self.pending_events.append(
            event_type(
                contact_id=self.id,
                venue_id=self.venue_id,
                name=self.name,
                email=self.email,
                phone=self.phone,
                lead_source=self.lead_source,
                status=self.status,
                lead_heat=self.lead_heat,
                **extra,
            )
        )

    def collect_events(self) -> list[Event]:
        events, self.pending_events = self.pending_events, []
        return events
