"""The webhook endpoints API's bodies (camelCase JSON). A secret is shown only when it
is made: on creation and on rotation."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from gala.api import RequestBody, ResponseBody
from partners.webhooks.domain import (
    DESCRIPTION_MAX,
    FILTERS_MAX,
    URL_MAX,
    DisabledReason,
    Endpoint,
)

Url = Annotated[
    str,
    Field(
        min_length=1,
        max_length=URL_MAX,
        description="https (http only in dev mode); never a loopback, link-local or private"
        " address.",
        examples=["https://hooks.partner.example/gala"],
    ),
]
Filters = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=200)]],
    Field(
        min_length=1,
        max_length=FILTERS_MAX,
        description="Published event types (gala.opportunity.won.v1) or aggregate"
        " wildcards (gala.payment.*).",
        examples=[["gala.opportunity.won.v1", "gala.payment.*"]],
    ),
]
Description = Annotated[str, Field(max_length=DESCRIPTION_MAX)]


class CreateEndpointIn(RequestBody):
    url: Url
    event_types: Filters
    description: Description = ""


class UpdateEndpointIn(RequestBody):
    url: Url | None = None
    event_types: Filters | None = None
    description: Description | None = None


class EndpointOut(ResponseBody):
    id: str
    url: str
    event_types: list[str]
    description: str
    enabled: bool
    disabled_reason: DisabledReason | None = None
    disabled_at: datetime | None = None
    failing_since: datetime | None = None
    secret_rotated_at: datetime
    previous_secret_expires_at: datetime | None = Field(
        default=None, description="Until then the previous secret signs too (after a rotation)."
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, e: Endpoint) -> EndpointOut:
        older = [s.expires_at for s in e.secrets[1:] if s.expires_at is not None]
        return cls(
            id=e.id,
            url=e.url,
            event_types=list(e.event_types),
            description=e.description,
            enabled=e.enabled,
            disabled_reason=e.disabled_reason,
            disabled_at=e.disabled_at,
            failing_since=e.failing_since,
            secret_rotated_at=e.secrets[0].created_at,
            previous_secret_expires_at=max(older) if older else None,
            created_at=e.created_at,
            updated_at=e.updated_at,
        )


class EndpointWithSecretOut(EndpointOut):
    secret: str = Field(
        description="The Standard Webhooks signing secret (whsec_...): shown this once.",
        examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    )

    @classmethod
    def with_secret(cls, e: Endpoint, secret: str) -> EndpointWithSecretOut:
        return cls(**EndpointOut.of(e).model_dump(), secret=secret)
