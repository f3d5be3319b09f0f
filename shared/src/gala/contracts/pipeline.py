"""Events the pipeline service publishes, on ``gala.pipeline.opportunity``.

Subject: the opportunity id; the venue in the envelope. Every event carries the
opportunity as it is after the change, so consumers (contacts, projects, billing) never
need to call back: the won event in particular holds everything a project and a payment
schedule are made from. Money is exact: ``value`` is a decimal (a JSON string) with its
ISO 4217 ``currency``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from gala.events.model import Event

OPPORTUNITY_TOPIC = "gala.pipeline.opportunity"


class OpportunityOutcome(StrEnum):
    OPEN = "OPEN"
    WON = "WON"
    LOST = "LOST"


class OpportunityEvent(Event):
    opportunity_id: str
    venue_id: str
    contact_id: str
    name: str
    stage: str
    outcome: OpportunityOutcome = OpportunityOutcome.OPEN
    value: Decimal | None = None
    currency: str | None = None
    event_type: str | None = None
    event_date: datetime | None = None
    guest_count: int | None = None
    requires_catering: bool = False
    room_assignment: str | None = None
    # Added (optional, additive): the stage's stable id and the assigned room's name.
    stage_id: str | None = None
    room_name: str | None = None


class OpportunityCreated(
    OpportunityEvent, type="gala.opportunity.created.v1", topic=OPPORTUNITY_TOPIC
):
    """A sales opportunity was opened for a contact."""


class OpportunityUpdated(
    OpportunityEvent, type="gala.opportunity.updated.v1", topic=OPPORTUNITY_TOPIC
):
    """Its details changed (dates, guests, value, room...)."""


class OpportunityStageChanged(
    OpportunityEvent, type="gala.opportunity.stage_changed.v1", topic=OPPORTUNITY_TOPIC
):
    """It moved to another stage of the venue's pipeline."""

    previous_stage: str


class OpportunityWon(OpportunityEvent, type="gala.opportunity.won.v1", topic=OPPORTUNITY_TOPIC):
    """The venue won the event: projects and billing start from here."""

    outcome: OpportunityOutcome = OpportunityOutcome.WON
    won_at: datetime


class OpportunityLost(OpportunityEvent, type="gala.opportunity.lost.v1", topic=OPPORTUNITY_TOPIC):
    """The venue lost it, for ``reason``."""

    outcome: OpportunityOutcome = OpportunityOutcome.LOST
    lost_at: datetime
    reason: str


OPPORTUNITY_EVENTS: tuple[type[OpportunityEvent], ...] = (
    OpportunityCreated,
    OpportunityUpdated,
    OpportunityStageChanged,
    OpportunityWon,
    OpportunityLost,
)
