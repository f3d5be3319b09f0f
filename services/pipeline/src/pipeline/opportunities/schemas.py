"""The opportunities API's bodies (camelCase JSON, ids as ``id``, money as decimal strings)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import Field

from gala.api import RequestBody, ResponseBody
from gala.contracts.pipeline import OpportunityOutcome
from gala.values import UNSET
from pipeline.opportunities.domain import Opportunity

Name = Annotated[str, Field(min_length=1, max_length=1000, examples=["Smith wedding"])]
Money = Annotated[
    str,
    Field(
        pattern=r"^[0-9]{1,18}(\.[0-9]{1,18})?$",
        description='A decimal string in the venue\'s currency, e.g. "1250.00"',
        examples=["1250.00"],
    ),
]
Guests = Annotated[int, Field(ge=0, le=100_000)]
EventType = Annotated[str, Field(max_length=1000, examples=["WEDDING"])]
Id = Annotated[str, Field(min_length=1, max_length=200)]


class CreateOpportunityIn(RequestBody):
    name: Name
    contact_id: Id
    stage: Annotated[str | None, Field(max_length=200, description="A stage id or name")] = None
    value: Money | None = None
    event_type: EventType | None = None
    event_date: datetime | None = None
    guest_count: Guests | None = None
    requires_catering: bool = False
    room_assignment: Id | None = None
    custom_fields: dict[str, Any] | None = None

    def details(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "stage": self.stage,
            "value": self.value,
            "event_type": self.event_type,
            "event_date": self.event_date,
            "guest_count": self.guest_count,
            "requires_catering": self.requires_catering,
            "custom_fields": self.custom_fields,
        }


class UpdateOpportunityIn(RequestBody):
    """Only the fields sent change; ``null`` clears an optional one."""

    name: Name | None = None
    contact_id: Id | None = None
    stage: Annotated[str | None, Field(max_length=200)] = None
    value: Money | None = None
    event_type: EventType | None = None
    event_date: datetime | None = None
    guest_count: Guests | None = None
    requires_catering: bool | None = None
    room_assignment: Id | None = None
    custom_fields: dict[str, Any] | None = None

    def fields(self) -> dict[str, Any]:
        sent = self.model_fields_set
        for required in ("name", "contact_id", "stage", "requires_catering"):
            if required in sent and getattr(self, required) is None:
                raise ValueError(f"{required} cannot be removed")
        names = (
            *("name", "stage", "value", "event_type", "event_date", "guest_count"),
            *("requires_catering", "custom_fields"),
        )
        return {name: getattr(self, name) for name in names if name in sent}

    def room(self) -> Any:
        return self.room_assignment if "room_assignment" in self.model_fields_set else UNSET


class LoseIn(RequestBody):
    reason: Annotated[str, Field(min_length=1, max_length=1000, examples=["Chose another venue"])]


class OpportunityOut(ResponseBody):
    id: str
    venue_id: str
    name: str
    contact_id: str
    contact_name: str | None
    stage: str
    stage_id: str
    value: Decimal | None
    currency: str
    event_type: str | None
    event_date: datetime | None
    guest_count: int | None
    requires_catering: bool
    room_assignment: str | None
    room_name: str | None
    custom_fields: dict[str, Any] | None
    outcome: OpportunityOutcome
    won_at: datetime | None
    lost_at: datetime | None
    lost_reason: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, o: Opportunity) -> OpportunityOut:
        return cls(
            id=o.id,
            venue_id=o.venue_id,
            name=o.name,
            contact_id=o.contact_id,
            contact_name=o.contact_name,
            stage=o.stage,
            stage_id=o.stage_id,
            value=o.value,
            currency=o.currency,
            event_type=o.event_type,
            event_date=o.event_date,
            guest_count=o.guest_count,
            requires_catering=o.requires_catering,
            room_assignment=o.room_assignment,
            room_name=o.room_name,
            custom_fields=o.custom_fields,
            outcome=o.outcome,
            won_at=o.won_at,
            lost_at=o.lost_at,
            lost_reason=o.lost_reason,
            created_at=o.created_at,
            updated_at=o.updated_at,
        )
