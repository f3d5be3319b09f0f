"""The intake API's bodies (camelCase JSON)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr

from contacts.intake.domain import FORM_TYPE, JSON_TYPE, MAX_PAGES, MESSAGE_MAX, WebsiteLead
from contacts.intake.repository import IntakeKey
from gala.api import RequestBody, ResponseBody

PUBLIC_PREFIX = "/api/v1/intake"


class IntakeKeyOut(ResponseBody):
    venue_id: str
    key: str = Field(description="The venue's public website key (it goes in the form).")
    path: str = Field(description="Where the venue's website form posts.")
    created_at: datetime
    rotated_at: datetime | None

    @classmethod
    def of(cls, key: IntakeKey) -> IntakeKeyOut:
        return cls(
            venue_id=key.venue_id,
            key=key.key,
            path=f"{PUBLIC_PREFIX}/{key.key}",
            created_at=key.created_at,
            rotated_at=key.rotated_at,
        )


PageId = Annotated[str, Field(min_length=1, max_length=64, examples=["104729381234567"])]


class MetaPageIn(RequestBody):
    page_id: PageId
    access_token: SecretStr | None = Field(
        default=None,
        description=(
            "The page's access token (from Meta, with leads_retrieval): proof that the"
            " venue controls the page, and what reads its leads. Never answered back."
            " Required unless the venue already holds one for this page."
        ),
        json_schema_extra={"minLength": 1, "maxLength": 2048},
    )

    def grant(self) -> tuple[str, str | None]:
        token = self.access_token.get_secret_value() if self.access_token is not None else None
        return self.page_id, token


class MetaPagesIn(RequestBody):
    pages: list[MetaPageIn] = Field(max_length=MAX_PAGES)


class MetaPagesOut(ResponseBody):
    page_ids: list[str]


class WebsiteFormIn(RequestBody):
    """A website form: JSON, or form-encoded with the same field names."""

    name: str = Field(min_length=1, max_length=1000, examples=["Ada Lovelace"])
    email: str = Field(min_length=1, max_length=320, examples=["ada@example.com"])
    phone: str | None = Field(default=None, max_length=40, examples=["+44 20 7946 0958"])
    message: str | None = Field(default=None, max_length=2 * MESSAGE_MAX)
    lead_source: str | None = Field(
        default=None, max_length=40, description="One of the lead sources; WEBSITE if blank."
    )
    website: str | None = Field(
        default=None, description="The honeypot: hide it from people, who leave it empty."
    )

    def to_lead(self) -> WebsiteLead:
        return WebsiteLead.of(
            name=self.name,
            email=self.email,
            phone=self.phone,
            message=self.message,
            lead_source=self.lead_source,
        )


def _form_schema() -> dict[str, Any]:
    schema = WebsiteFormIn.model_json_schema(by_alias=True)
    assert "$defs" not in schema, "the form's schema must stand alone (it is inlined)"
    return schema


WEBSITE_FORM_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {JSON_TYPE: {"schema": _form_schema()}, FORM_TYPE: {"schema": _form_schema()}},
    }
}
"""The OpenAPI request body of the website form (read by hand: two media types)."""


class AcceptedOut(ResponseBody):
    status: Literal["accepted"] = "accepted"


class ReceivedOut(ResponseBody):
    status: Literal["received"] = "received"
