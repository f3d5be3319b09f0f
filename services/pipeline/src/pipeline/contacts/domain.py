"""The pipeline's own small copy of the venue's contacts, fed by contact events.

It answers one question without calling the contacts service: does this venue have
this (non-erased) contact, and what is its name? Rules:

- a contact event carries the contact after the change; the copy keeps the newest
  (by event time), so a late redelivery of an older event changes nothing;
- an erasure is final: the name is forgotten (here and in the opportunities that
  copied it) and no later event brings the contact back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gala.errors import GalaError, InvalidInput


class ContactCopyError(GalaError):
    """Base of the contact projection's errors."""


class UnknownContact(ContactCopyError, InvalidInput):
    def __init__(self, contact_id: str) -> None:
        super().__init__(
            f"The venue has no contact {contact_id!r} (or it was erased).", contactId=contact_id
        )


@dataclass(frozen=True)
class ContactCopy:
    id: str
    venue_id: str
    name: str | None
    erased: bool
    as_of: datetime
