"""Use cases of the contact projection: follow contact events, answer lookups."""

from __future__ import annotations

from datetime import datetime

from pipeline.contacts.domain import UnknownContact
from pipeline.contacts.repository import ContactCopyRepository
from pipeline.opportunities.domain import ContactRef
from pipeline.opportunities.repository import OpportunityRepository


class ContactDirectory:
    def __init__(
        self, copies: ContactCopyRepository, opportunities: OpportunityRepository | None = None
    ) -> None:
        self._copies = copies
        self._opportunities = opportunities

    async def require(self, venue_id: str, contact_id: str) -> ContactRef:
        """The venue's contact, not erased; else 422."""
        copy = await self._copies.get(venue_id, contact_id)
        if copy is None or copy.erased:
            raise UnknownContact(contact_id)
        return ContactRef(copy.id, copy.name)

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

    async def erased(self, venue_id: str, contact_id: str, at: datetime) -> None:
        """Forget the person: their name here and in every opportunity that copied it."""
        await self._copies.erase(venue_id, contact_id, at)
        if self._opportunities is not None:
            await self._opportunities.set_contact_name(venue_id, contact_id, None)
