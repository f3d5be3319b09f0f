"""Documents: files linked to an opportunity, a project or a contact, and contracts a
client signs.

Pure: no I/O. Rules:

- a document names at least one of an opportunity, a project, a contact of the venue;
- its file's type must be one Gala takes, and its first bytes must say so too (a file
  named .pdf that is not a PDF is refused);
- a client signs with their typed name, an explicit consent and the SHA-256 of the file
  they reviewed: a document whose current file is another one is not signed (a
  conflict: review it again); the signature records who, when, from where, and the
  SHA-256 of the exact bytes signed; signing a signed document again changes nothing,
  and a signed document's file can no more be replaced.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from gala.contracts.billing import (
    DocumentCreated,
    DocumentEvent,
    DocumentReplaced,
    DocumentSigned,
)
from gala.errors import Conflict, GalaError, InvalidInput, NotFound, UnsupportedMediaType
from gala.events.model import Event

NAME_MAX: Final = 200
SIGNER_MAX: Final = 200
SIGNATURES: Final[dict[str, tuple[bytes, ...]]] = {
    "application/pdf": (b"%PDF-",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    # Office files are zip containers
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": (b"PK\x03\x04",),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": (b"PK\x03\x04",),
}
"""The types Gala takes, and how each one's first bytes look."""
SNIFF_BYTES: Final = 8


class DocumentError(GalaError):
    """Base of the documents module's errors."""


class InvalidDocument(DocumentError, InvalidInput):
    pass


class DocumentNotFound(DocumentError, NotFound):
    def __init__(self) -> None:
        super().__init__("No such document.")


class DocumentSignedAlready(DocumentError, Conflict):
    def __init__(self) -> None:
        super().__init__("The document is signed: its file can no more be replaced.")


class DocumentNotAsReviewed(DocumentError, Conflict):
    code = "document-not-as-reviewed"
    title = "The document is not the one reviewed"

    def __init__(self, reviewed: str, current: str) -> None:
        super().__init__(
            "The document's current file is not the one you reviewed: review it again.",
            reviewedSha256=reviewed,
            currentSha256=current,
        )


class DocumentChangedConcurrently(DocumentError, Conflict):
    def __init__(self) -> None:
        super().__init__("The document kept changing meanwhile; try again.")


def media_type(declared: str | None) -> str:
    """The declared media type, if Gala takes it (415 otherwise)."""
    value = (declared or "").split(";", 1)[0].strip().lower()
    if value not in SIGNATURES:
        raise UnsupportedMediaType(
            f"Upload one of: {', '.join(sorted(SIGNATURES))}.", accepted=sorted(SIGNATURES)
        )
    return value


def check_content(content_type: str, head: bytes) -> None:
    """The file's first bytes must be those of its declared type."""
    if not any(head.startswith(magic) for magic in SIGNATURES[content_type]):
        raise UnsupportedMediaType(f"The file is not a {content_type} file.")


def normalize_name(value: str) -> str:
    name = " ".join(value.replace("/", " ").replace("\\", " ").split())
    if not name or len(name) > NAME_MAX:
        raise InvalidDocument(f"A document's name has 1 to {NAME_MAX} characters.")
    return name


@dataclass(frozen=True)
class Links:
    opportunity_id: str | None = None
    project_id: str | None = None
    contact_id: str | None = None

    def check(self) -> Links:
        if not (self.opportunity_id or self.project_id or self.contact_id):
            raise InvalidDocument("A document belongs to an opportunity, a project or a contact.")
        return self


@dataclass(frozen=True)
class Stored:
    """A file in the blob store."""

    key: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Signature:
    signer_id: str
    signer_name: str
    signed_at: datetime
    address: str
    user_agent: str | None
    sha256: str
    consent: str


@dataclass
class Document:
    id: str
    venue_id: str
    name: str
    content_type: str
    links: Links
    file: Stored
    uploaded_by: str
    created_at: datetime
    updated_at: datetime
    signature: Signature | None = None
    version: int = 1
    pending_events: list[Event] = field(default_factory=list)

    @staticmethod
    def new_id() -> str:
        return str(uuid.uuid4())

    @classmethod
    def upload(
        cls,
        *,
        venue_id: str,
        name: str,
        content_type: str,
        links: Links,
        file: Stored,
        uploaded_by: str,
        now: datetime,
        document_id: str | None = None,
    ) -> Document:
        document = cls(
            id=document_id or str(uuid.uuid4()),
            venue_id=venue_id,
            name=normalize_name(name),
            content_type=content_type,
            links=links.check(),
            file=file,
            uploaded_by=uploaded_by,
            created_at=now,
            updated_at=now,
        )
        document._record(DocumentCreated)
        return document

    @property
    def is_signed(self) -> bool:
        return self.signature is not None

    def replace_file(self, content_type: str, file: Stored, now: datetime) -> Stored:
        """A new file for an unsigned document; answers the old one (to delete)."""
        if self.is_signed:
            raise DocumentSignedAlready()
        old, self.file, self.content_type = self.file, file, content_type
        self.updated_at = now
        self._record(DocumentReplaced)
        return old

    def check_reviewed(self, sha256: str) -> None:
        """The client reviewed this very file (its SHA-256, hex), else a conflict."""
        if sha256.lower() != self.file.sha256:
            raise DocumentNotAsReviewed(sha256.lower(), self.file.sha256)

    def sign(self, signature: Signature) -> bool:
        """Sign it; ``False`` when it is signed already (nothing changes)."""
        if self.is_signed:
            return False
        if signature.sha256 != self.file.sha256:
            raise InvalidDocument("The file changed while it was being signed; sign again.")
        if not signature.signer_name.strip() or len(signature.signer_name) > SIGNER_MAX:
            raise InvalidDocument(f"Type your full name (1 to {SIGNER_MAX} characters).")
        self.signature = signature
        self.updated_at = signature.signed_at
        self._record(
            DocumentSigned,
            signed_at=signature.signed_at,
            signer_id=signature.signer_id,
            signer_name=signature.signer_name,
        )
        return True

    def collect_events(self) -> list[Event]:
        events, self.pending_events = self.pending_events, []
        return events

    def _record(self, kind: type[DocumentEvent], **extra: Any) -> None:
        self.pending_events.append(
            kind(
                document_id=self.id,
                venue_id=self.venue_id,
                name=self.name,
                opportunity_id=self.links.opportunity_id,
                project_id=self.links.project_id,
                contact_id=self.links.contact_id,
                content_type=self.content_type,
                size=self.file.size,
                sha256=self.file.sha256,
                **extra,
            )
        )
