"""Use cases of the contact projection: follow contact events, answer lookups (asking
the contacts service once when the copy lacks a contact: see domain.py)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from gala.projections import newest_copies, replaces
from pipeline.contacts.domain import ContactCopy, ContactUnconfirmed, UnknownContact
from pipeline.contacts.owner import ContactsOwner, OwnerUnreachable
from pipeline.contacts.repository import ContactCopyRepository
from pipeline.opportunities.domain import ContactRef
from pipeline.opportunities.repository import OpportunityRepository

log = logging.getLogger(__name__)


class ContactDirectory:
    def __init__(
        self,
        copies: ContactCopyRepository,
        opportunities: OpportunityRepository | None = None,
        owner: ContactsOwner | None = None,
    ) -> None:
        self._copies = copies
        self._opportunities = opportunities
        self._owner = owner

    async def require(self, venue_id: str, contact_id: str) -> ContactRef:
        """The venue's contact, not erased; else 422 (503 when the copy lacks it and the
        contacts service cannot be asked now)."""
        copy = await self._copies.get(venue_id, contact_id)
        if copy is None and self._owner is not None:
            await self._read_through(self._owner, venue_id, contact_id)
            copy = await self._copies.get(venue_id, contact_id)
        if copy is None or copy.erased:
            raise UnknownContact(contact_id)
        return ContactRef(copy.id, copy.name)

    async def _read_through(self, owner: ContactsOwner, venue_id: str, contact_id: str) -> None:
        """Ask the owner once and keep its answer in the copy, as of the contact's last
        change (newest wins: an event of a later change still replaces it)."""
        try:
            found = await owner.contact(venue_id, contact_id)
        except OwnerUnreachable as exc:
            log.warning(
                "cannot confirm a contact the copy lacks",
                extra={"contactId": contact_id, "reason": str(exc)},
            )
            raise ContactUnconfirmed(contact_id) from None
        if found is None:
            return
        if found.erased:
            await self._copies.erase(venue_id, contact_id, found.updated_at)
        elif found.name is not None:
            await self._copies.upsert(venue_id, contact_id, found.name, found.updated_at)

    async def is_erased(self, venue_id: str, contact_id: str) -> bool:
        copy = await self._copies.get(venue_id, contact_id)
        return copy is not None and copy.erased

    async def seen(self, venue_id: str, contact_id: str, name: str, as_of: datetime) -> None:
        """A contact event: keep its name, and the name its opportunities show."""
        before = await self._copies.get(venue_id, contact_id)
        written = await self._copies.upsert(venue_id, contact_id, name, as_of)
        renamed = before is None or before.name != name
        if written and renamed and self._opportunities is not None:
            await self._opportunities.set_contact_name(venue_id, contact_id, name)

    async def seen_many(self, contacts: Sequence[ContactCopy]) -> None:
        """``seen`` for a run of contact events (an import's): the copies in one bulk
        write, the renamed contacts' opportunities in another."""
        before = await self._copies.get_many([c.id for c in contacts])
        await self._copies.upsert_many(contacts)
        renamed = []
        for copy in newest_copies(contacts).values():
            old = before.get(copy.id)
            written = replaces(copy, old, final=old is not None and old.erased)
            if written and (old is None or old.name != copy.name):
                renamed.append((copy.venue_id, copy.id, copy.name))
        if renamed and self._opportunities is not None:
            await self._opportunities.set_contact_names(renamed)

    async def erased(self, venue_id: str, contact_id: str, at: datetime) -> None:
        """Forget the person: their name here and in every opportunity that copied it."""
        await self._copies.erase(venue_id, contact_id, at)
        if self._opportunities is not None:
            await self._opportunities.set_contact_name(venue_id, contact_id, None)
