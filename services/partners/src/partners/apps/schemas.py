"""The partner apps API's bodies: camelCase JSON, ids as ``id``. A key appears in one
answer only: the one that made it (creation, rotation)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from gala.api import RequestBody, ResponseBody
from partners.apps.domain import PartnerApp
from partners.apps.service import KeyOwner

# Generous bounds on raw input; the domain checks the normalised values precisely.
Name = Annotated[str, Field(min_length=1, max_length=400, examples=["Venue CRM sync"])]
Description = Annotated[str, Field(max_length=4000, examples=["Pushes won deals to our ERP."])]


class CreateAppIn(RequestBody):
    name: Name
    description: Description | None = None


class AppOut(ResponseBody):
    id: str
    venue_id: str
    name: str
    description: str | None
    active: bool
    key_prefix: str = Field(description="The first characters of the current key.")
    key_created_at: datetime
    created_at: datetime
    updated_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, app: PartnerApp) -> AppOut:
        return cls(
            id=app.id,
            venue_id=app.venue_id,
            name=app.name,
            description=app.description,
            active=app.active,
            key_prefix=app.key_prefix,
            key_created_at=app.key_created_at,
            created_at=app.created_at,
            updated_at=app.updated_at,
            revoked_at=app.revoked_at,
        )


class AppWithKeyOut(AppOut):
    api_key: str = Field(
        description="The secret API key (`Authorization: Bearer gala_pk_...`). Shown this"
        " once: only its hash is kept.",
        examples=["gala_pk_" + "x" * 43],
    )

    @classmethod
    def with_key(cls, app: PartnerApp, key: str) -> AppWithKeyOut:
        return cls(**AppOut.of(app).model_dump(), api_key=key)


class KeyOwnerOut(ResponseBody):
    """Whose a key is (for the gateway)."""

    app_id: str
    venue_id: str
    active: bool

    @classmethod
    def of(cls, owner: KeyOwner) -> KeyOwnerOut:
        return cls(app_id=owner.app_id, venue_id=owner.venue_id, active=owner.active)
