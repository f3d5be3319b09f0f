"""A venue's sales opportunities: what is sold, to whom, where in the pipeline.

Pure: no I/O. Methods validate, change state and record the events they cause in
``pending_events``; the repository saves those in the same write as the state.

Rules:

- an opportunity names a contact of its venue (the service checks the contact
  projection), starts in a stage of the venue's pipeline (the first by default), and
  its value is exact money in the venue's currency (integer minor units);
- it holds its room on its event date (UTC calendar day) while it is in a stage that
  holds rooms, or once won; never once lost (``room_claim`` is that key, or None);
- the assigned room's capacity must take the guest count (422);
- only ``win`` and ``lose`` reach the outcomes; winning needs an event date; winning a
  won one (losing a lost one) changes nothing and records nothing; the other way is 409;
- a lost opportunity changes no more; a won one may still change its details (dates,
  guests...) but not its stage;
- custom fields are kept exactly as given, up to a size limit;
- the contact's name is copied for display and forgotten when the contact is erased.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from gala.contracts.pipeline import (
    OpportunityCreated,
    OpportunityEvent,
    OpportunityLost,
    OpportunityOutcome,
    OpportunityStageChanged,
    OpportunityUpdated,
    OpportunityWon,
)
from gala.errors import Conflict, GalaError, InvalidInput, NotFound
from gala.events.model import Event
from gala.money import from_minor, to_minor
from gala.values import UNSET, Unset, json_object, utc_millis
from pipeline.stages.domain import PipelineSetup, Stage

NAME_MAX: Final = 200
EVENT_TYPE_MAX: Final = 100
REASON_MAX: Final = 1000
GUESTS_MAX: Final = 100_000
EXTRA_MAX_BYTES: Final = 16_384


class OpportunityError(GalaError):
    """Base of the opportunities module's errors."""


class InvalidOpportunity(OpportunityError, InvalidInput):
    pass


class OpportunityNotFound(OpportunityError, NotFound):
    def __init__(self) -> None:
        super().__init__("No such opportunity in this venue.")


class OpportunityClosed(OpportunityError, Conflict):
    pass


class OpportunityChangedConcurrently(OpportunityError, Conflict):
    def __init__(self) -> None:
        super().__init__("The opportunity kept changing while this change was applied; retry.")


@dataclass(frozen=True)
class ContactRef:
    id: str
    name: str | None


@dataclass(frozen=True)
class RoomRef:
    id: str
    name: str
    capacity: int


@dataclass(frozen=True)
class OpportunityPatch:
    """A change of details; UNSET fields are left alone. References come resolved."""

    name: str | Unset = UNSET
    contact: ContactRef | Unset = UNSET
    stage: str | Unset = UNSET
    value: Decimal | str | Unset | None = UNSET
    event_type: str | Unset | None = UNSET
    event_date: datetime | Unset | None = UNSET
    guest_count: int | Unset | None = UNSET
    requires_catering: bool | Unset = UNSET
    room: RoomRef | Unset | None = UNSET
    custom_fields: dict[str, Any] | Unset | None = UNSET


def normalize_name(value: str) -> str:
    name = " ".join(value.split())
    if not name:
        raise InvalidOpportunity("An opportunity needs a name.")
    if len(name) > NAME_MAX:
        raise InvalidOpportunity(f"A name has at most {NAME_MAX} characters.")
    return name


def normalize_event_type(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    event_type = " ".join(value.split())
    if len(event_type) > EVENT_TYPE_MAX:
        raise InvalidOpportunity(f"An event type has at most {EVENT_TYPE_MAX} characters.")
    return event_type


def normalize_date(value: datetime | None) -> datetime | None:
    return None if value is None else utc_millis(value)


def check_guests(value: int | None) -> int | None:
    if value is not None and not 0 <= value <= GUESTS_MAX:
        raise InvalidOpportunity(f"A guest count is from 0 to {GUESTS_MAX}.")
    return value


def check_extra(value: Any) -> Any:
    try:
        return json_object(value, "customFields", EXTRA_MAX_BYTES)
    except InvalidInput as exc:
        raise InvalidOpportunity(exc.detail) from None


def check_capacity(room: RoomRef, guest_count: int | None) -> None:
    if guest_count is not None and guest_count > room.capacity:
        raise InvalidOpportunity(
            f"The room {room.name!r} takes {room.capacity} guests, not {guest_count}.",
            roomId=room.id,
            capacity=room.capacity,
            guestCount=guest_count,
        )


def claim_key(room_id: str, event_date: datetime) -> str:
    """The booking key of a room on a (UTC) day."""
    return f"{room_id}|{event_date.astimezone(UTC).date().isoformat()}"


def _minor(value: Decimal | str | None, currency: str) -> int | None:
    if value is None:
        return None
    try:
        return to_minor(value, currency)
    except InvalidInput as exc:
        raise InvalidOpportunity(exc.detail) from exc


@dataclass
class Opportunity:
    id: str
    venue_id: str
    name: str
    contact_id: str
    stage_id: str
    stage: str
    currency: str
    created_at: datetime
    updated_at: datetime
    contact_name: str | None = None
    value_minor: int | None = None
    event_type: str | None = None
    event_date: datetime | None = None
    guest_count: int | None = None
    requires_catering: bool = False
    room_assignment: str | None = None
    room_name: str | None = None
    custom_fields: dict[str, Any] | None = None
    outcome: OpportunityOutcome = OpportunityOutcome.OPEN
    won_at: datetime | None = None
    lost_at: datetime | None = None
    lost_reason: str | None = None
    room_claim: str | None = None
    version: int = 1
    pending_events: list[Event] = field(default_factory=list)

    @classmethod
    def create(
        cls,
        *,
        venue_id: str,
        name: str,
        contact: ContactRef,
        setup: PipelineSetup,
        now: datetime,
        stage: str | None = None,
        value: Decimal | str | None = None,
        event_type: str | None = None,
        event_date: datetime | None = None,
        guest_count: int | None = None,
        requires_catering: bool = False,
        room: RoomRef | None = None,
        custom_fields: dict[str, Any] | None = None,
    ) -> Opportunity:
        chosen = _stage(setup, stage) if stage is not None else setup.first
        opportunity = cls(
            id=str(uuid.uuid4()),
            venue_id=venue_id,
            name=normalize_name(name),
            contact_id=contact.id,
            contact_name=contact.name,
            stage_id=chosen.id,
            stage=chosen.name,
            currency=setup.currency,
            created_at=now,
            updated_at=now,
            value_minor=_minor(value, setup.currency),
            event_type=normalize_event_type(event_type),
            event_date=normalize_date(event_date),
            guest_count=check_guests(guest_count),
            requires_catering=requires_catering,
            room_assignment=room.id if room else None,
            room_name=room.name if room else None,
            custom_fields=check_extra(custom_fields),
        )
        if room is not None:
            check_capacity(room, opportunity.guest_count)
        opportunity.refresh_claim(setup)
        opportunity._record(OpportunityCreated)
        return opportunity

    # --- state ------------------------------------------------------------------------

    @property
    def value(self) -> Decimal | None:
        return None if self.value_minor is None else from_minor(self.value_minor, self.currency)

    @property
    def is_open(self) -> bool:
        return self.outcome == OpportunityOutcome.OPEN

    def holds_room(self, setup: PipelineSetup) -> bool:
        if self.outcome == OpportunityOutcome.LOST:
            return False
        if self.outcome == OpportunityOutcome.WON:
            return True
        stage = setup.by_id(self.stage_id)
        return stage is not None and stage.holds_room

    def refresh_claim(self, setup: PipelineSetup) -> None:
        """Which room and day this opportunity holds now (None: none)."""
        if self.room_assignment and self.event_date and self.holds_room(setup):
            self.room_claim = claim_key(self.room_assignment, self.event_date)
        else:
            self.room_claim = None

    # --- changes ----------------------------------------------------------------------

    def update(self, patch: OpportunityPatch, setup: PipelineSetup, now: datetime) -> None:
        if self.outcome == OpportunityOutcome.LOST:
            raise OpportunityClosed("A lost opportunity changes no more.")
        before = self._details()
        if not isinstance(patch.name, Unset):
            self.name = normalize_name(patch.name)
        if not isinstance(patch.contact, Unset):
            self.contact_id, self.contact_name = patch.contact.id, patch.contact.name
        if not isinstance(patch.value, Unset):
            self.value_minor = _minor(patch.value, self.currency)
        if not isinstance(patch.event_type, Unset):
            self.event_type = normalize_event_type(patch.event_type)
        if not isinstance(patch.event_date, Unset):
            self.event_date = normalize_date(patch.event_date)
        if not isinstance(patch.guest_count, Unset):
            self.guest_count = check_guests(patch.guest_count)
        if not isinstance(patch.requires_catering, Unset):
            self.requires_catering = patch.requires_catering
        if not isinstance(patch.room, Unset):
            self.room_assignment = patch.room.id if patch.room else None
            self.room_name = patch.room.name if patch.room else None
        if not isinstance(patch.custom_fields, Unset):
            self.custom_fields = check_extra(patch.custom_fields)
        if isinstance(patch.room, RoomRef):
            check_capacity(patch.room, self.guest_count)
        details_changed = self._details() != before
        previous = self.stage
        stage_changed = False
        if not isinstance(patch.stage, Unset):
            target = _stage(setup, patch.stage)
            if target.id != self.stage_id:
                if self.outcome == OpportunityOutcome.WON:
                    raise OpportunityClosed("A won opportunity stays in its stage.")
                self.stage_id, self.stage = target.id, target.name
                stage_changed = True
        if not (details_changed or stage_changed):
            return
        self.updated_at = now
        self.refresh_claim(setup)
        if details_changed:
            self._record(OpportunityUpdated)
        if stage_changed:
            self._record(OpportunityStageChanged, previous_stage=previous)

    def advance(
        self, to: Stage, setup: PipelineSetup, now: datetime, *, only_from: str | None
    ) -> bool:
        """A hint from elsewhere: move forward to ``to`` (only from ``only_from`` if given)."""
        if not self.is_open or setup.position(to.id) <= setup.position(self.stage_id):
            return False
        if only_from is not None and self.stage_id != only_from:
            return False
        previous = self.stage
        self.stage_id, self.stage = to.id, to.name
        self.updated_at = now
        self.refresh_claim(setup)
        self._record(OpportunityStageChanged, previous_stage=previous)
        return True

    def win(self, setup: PipelineSetup, now: datetime) -> bool:
        """Win it; ``False`` when it was won already (nothing changes)."""
        if self.outcome == OpportunityOutcome.WON:
            return False
        if self.outcome == OpportunityOutcome.LOST:
            raise OpportunityClosed("A lost opportunity cannot be won.")
        if self.event_date is None:
            raise InvalidOpportunity("Winning needs an event date.")
        self.outcome = OpportunityOutcome.WON
        self.won_at = now
        self.updated_at = now
        self.refresh_claim(setup)
        self._record(OpportunityWon, won_at=now)
        return True

    def lose(self, reason: str, setup: PipelineSetup, now: datetime) -> bool:
        """Lose it for ``reason``; ``False`` when it was lost already (nothing changes)."""
        if self.outcome == OpportunityOutcome.LOST:
            return False
        if self.outcome == OpportunityOutcome.WON:
            raise OpportunityClosed("A won opportunity cannot be lost.")
        why = " ".join(reason.split())
        if not why or len(why) > REASON_MAX:
            raise InvalidOpportunity(f"A reason (1 to {REASON_MAX} characters) is needed.")
        self.outcome = OpportunityOutcome.LOST
        self.lost_at = now
        self.lost_reason = why
        self.updated_at = now
        self.refresh_claim(setup)
        self._record(OpportunityLost, lost_at=now, reason=why)
        return True

    def forget_contact_name(self) -> None:
        self.contact_name = None

    # --- events -----------------------------------------------------------------------

    def collect_events(self) -> list[Event]:
        events, self.pending_events = self.pending_events, []
        return events

    def _record(self, kind: type[OpportunityEvent], **extra: Any) -> None:
        self.pending_events.append(
            kind(
                opportunity_id=self.id,
                venue_id=self.venue_id,
                contact_id=self.contact_id,
                name=self.name,
                stage=self.stage,
                stage_id=self.stage_id,
                outcome=self.outcome,
                value=self.value,
                currency=self.currency,
                event_type=self.event_type,
                event_date=self.event_date,
                guest_count=self.guest_count,
                requires_catering=self.requires_catering,
                room_assignment=self.room_assignment,
                room_name=self.room_name,
                **extra,
            )
        )

    def _details(self) -> tuple[Any, ...]:
        return (
            self.name,
            self.contact_id,
            self.value_minor,
            self.event_type,
            self.event_date,
            self.guest_count,
            self.requires_catering,
            self.room_assignment,
            json.dumps(self.custom_fields, sort_keys=True),
        )


def _stage(setup: PipelineSetup, ref: str) -> Stage:
    stage = setup.stage(ref)
    if stage is None:
        raise InvalidOpportunity(f"The venue's pipeline has no stage {ref!r}.")
    return stage
