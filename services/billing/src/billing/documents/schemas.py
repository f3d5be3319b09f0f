"""The documents API's bodies (camelCase JSON, ids as ``id``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from billing.documents.domain import SIGNER_MAX, Document
from gala.api import RequestBody, ResponseBody

Sha256 = Annotated[
    str,
    Field(
        pattern=r"^[0-9a-fA-F]{64}$",
        description="A SHA-256, 64 hexadecimal characters.",
        examples=["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"],
    ),
]


class SignIn(RequestBody):
    signer_name: Annotated[str, Field(min_length=1, max_length=SIGNER_MAX, examples=["Ada Couple"])]
    consent: bool
    """Must be true: "I have read this document and I sign it electronically"."""
    sha256: Sha256
    """The SHA-256 of the file the client reviewed (the document's ``sha256`` when they
    downloaded it): if the current file is another one, nothing is signed (409)."""


class SignatureOut(ResponseBody):
    signer_id: str
    signer_name: str
    signed_at: datetime
    sha256: str
    """The SHA-256 of the exact bytes signed."""


class DocumentOut(ResponseBody):
    id: str
    venue_id: str
    name: str
    type: str
    size: int
    sha256: str
    opportunity_id: str | None
    project_id: str | None
    contact_id: str | None
    url: str
    """A signed download link, valid for a few minutes (ask again for a fresh one)."""
    is_signed: bool
    signed_at: datetime | None
    signature: SignatureOut | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, d: Document, url: str) -> DocumentOut:
        s = d.signature
        return cls(
            id=d.id,
            venue_id=d.venue_id,
            name=d.name,
            type=d.content_type,
            size=d.file.size,
            sha256=d.file.sha256,
            opportunity_id=d.links.opportunity_id,
            project_id=d.links.project_id,
            contact_id=d.links.contact_id,
            url=url,
            is_signed=s is not None,
            signed_at=s.signed_at if s else None,
            signature=None
            if s is None
            else SignatureOut(
                signer_id=s.signer_id,
                signer_name=s.signer_name,
                signed_at=s.signed_at,
                sha256=s.sha256,
            ),
            created_at=d.created_at,
            updated_at=d.updated_at,
        )
