"""The pipeline's own small copy of the venue's contacts, fed by contact events.

It answers one question, almost always without calling the contacts service: does this
venue have this (non-erased) contact, and what is its name? Rules:

- a contact event carries the contact after the change; the copy keeps the newest
  (by event time), so a late redelivery of an older event changes nothing;
- an erasure is final: the name is forgotten (here and in the opportunities that
  copied it) and no later event brings the contact back;
- a contact the copy does not have (yet: after a bulk import the events lag) is asked
  of the contacts service once (a read-through, see owner.py); what it answers goes
  into the copy as of the contact's last change, so a later event still wins and an
  older one does not go back. Unknown there too: 422. The contacts service down (or
  slow): 503 "retry", never 422 (the contact may well exist) and never accepted on
  trust to be confirmed later: an opportunity for a contact that turns out not to
  exist (or another venue's) would have to be undone after the fact, after its events
  went out to projects, billing and partners; a retry costs the caller one request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gala.errors import GalaError, InvalidInput, ServiceUnavailable


class ContactCopyError(GalaError):
    """Base of the contact projection's errors."""


class UnknownContact(ContactCopyError, InvalidInput):
    def __init__(self, contact_id: str) -> None:
        super().__init__(
            f"The venue has no contact {contact_id!r} (or it was erased).", contactId=contact_id
        )


class ContactUnconfirmed(ContactCopyError, ServiceUnavailable):
    RETRY_AFTER_SECONDS = 2

    def __init__(self, contact_id: str) -> None:
        super().__init__(
            f"Cannot confirm the contact {contact_id!r} now (the contacts service does not"
            " answer); retry.",
            contactId=contact_id,
        )

    def response_headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.RETRY_AFTER_SECONDS)}


@dataclass(frozen=True)
class ContactCopy:
    id: str
    venue_id: str
    name: str | None
    erased: bool
    as_of: datetime
