"""The contacts API's bodies (camelCase JSON, ids as ``id``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field

from contacts.leads.domain import Contact, ContactPatch
from gala.api import RequestBody, ResponseBody
from gala.contracts.contacts import ContactStatus, HeatReason, LeadSource
from gala.values import UNSET

Name = Annotated[str, Field(min_length=1, max_length=1000, examples=["Ada Lovelace"])]
Email = Annotated[str, Field(min_length=1, max_length=320, examples=["ada@example.com"])]
Phone = Annotated[str, Field(max_length=40, examples=["+44 20 7946 0958"])]


class CreateContactIn(RequestBody):
    name: Name
    email: Email
    phone: Phone | None = None
    lead_source: LeadSource = LeadSource.OTHER
    status: ContactStatus = ContactStatus.UNQUALIFIED
    social_profiles: dict[str, Any] | None = None
    custom_fields: dict[str, Any] | None = None

    def details(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "email": self.email,
            "phone": self.phone,
            "lead_source": self.lead_source,
            "status": self.status,
            "social_profiles": self.social_profiles,
            "custom_fields": self.custom_fields,
        }


class UpdateContactIn(RequestBody):
    """Only the fields sent change; ``status`` moves the contact in its lifecycle."""

    name: Name | None = None
    email: Email | None = None
    phone: Phone | None = None
    lead_source: LeadSource | None = None
    status: ContactStatus | None = None
    social_profiles: dict[str, Any] | None = None
    custom_fields: dict[str, Any] | None = None

    def to_patch(self) -> ContactPatch:
        sent = self.model_fields_set

        def given(field: str) -> Any:
            return getattr(self, field) if field in sent else UNSET

        if ("name" in sent and self.name is None) or ("email" in sent and self.email is None):
            raise ValueError("name and email cannot be removed")
        return ContactPatch(
            name=given("name"),
            email=given("email"),
            phone=given("phone"),
            lead_source=given("lead_source") if self.lead_source is not None else UNSET,
            social_profiles=given("social_profiles"),
            custom_fields=given("custom_fields"),
        )


class ContactOut(ResponseBody):
    id: str
    venue_id: str
    name: str
    email: str
    phone: str | None
    lead_source: LeadSource
    status: ContactStatus
    lead_heat: int
    heat_reasons: list[HeatReason]
    social_profiles: dict[str, Any] | None
    custom_fields: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, contact: Contact) -> ContactOut:
        return cls(
            id=contact.id,
            venue_id=contact.venue_id,
            name=contact.name,
            email=contact.email,
            phone=contact.phone,
            lead_source=contact.lead_source,
            status=contact.status,
            lead_heat=contact.lead_heat,
            heat_reasons=list(contact.heat_reasons),
            social_profiles=contact.social_profiles,
            custom_fields=contact.custom_fields,
            created_at=contact.created_at,
            updated_at=contact.updated_at,
        )


class InternalContactOut(ResponseBody):
    """What another Gala service learns of a contact (the pipeline, when its copy lacks
    it): its name unless erased, and when it last changed (for the copy's newest-wins)."""

    id: str
    venue_id: str
    name: str | None
    erased: bool
    updated_at: datetime

    @classmethod
    def of(cls, contact: Contact) -> InternalContactOut:
        return cls(
            id=contact.id,
            venue_id=contact.venue_id,
            name=None if contact.erased else contact.name,
            erased=contact.erased,
            updated_at=contact.updated_at,
        )
