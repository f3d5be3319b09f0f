"""Use cases for contacts: load, let the domain decide, save (the events ride along).

Staff use cases are scoped to the caller's venue (another venue's contact is "not
found") and open to ADMIN and SALES only. The event-driven use cases (opportunities,
engagement) are scoped to the venue the event names. A save that lost a race with
another change is recomputed from a fresh read, a few times.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from contacts.leads.domain import (
    Contact,
    ContactAlreadyExists,
    ContactChangedConcurrently,
    ContactNotFound,
    ContactPatch,
)
from contacts.leads.repository import ContactFilter, ContactRepository, EmailTaken
from gala.concurrency import SAVE_ATTEMPTS, save_attempts
from gala.contracts.contacts import ContactStatus, LeadSource
from gala.contracts.pipeline import OpportunityEvent
from gala.identity import Principal, Role, ensure_role
from gala.store import utc_now
from gala.values import UNSET

CONTACT_ROLES = frozenset({Role.ADMIN, Role.SALES})
ERASE_ROLES = frozenset({Role.ADMIN})

Clock = Callable[[], datetime]


class ContactService:
    def __init__(self, contacts: ContactRepository, clock: Clock = utc_now) -> None:
        self._contacts = contacts
        self._clock = clock

    # --- staff ------------------------------------------------------------------------

    async def create(self, principal: Principal, **details: Any) -> Contact:
        ensure_role(principal, CONTACT_ROLES, "add contacts")
        return await self.create_in_venue(principal.venue_id, **details)

    async def create_in_venue(self, venue_id: str, **details: Any) -> Contact:
        contact = Contact.create(venue_id=venue_id, now=self._clock(), **details)
        if not await self._contacts.add(contact):
            existing = await self._contacts.by_email(venue_id, contact.email)
            raise ContactAlreadyExists(existing.id if existing else "")
        return contact

    async def get(self, principal: Principal, contact_id: str) -> Contact:
        ensure_role(principal, CONTACT_ROLES, "see contacts")
        return await self._load(principal.venue_id, contact_id)

    async def for_service(self, venue_id: str, contact_id: str) -> Contact:
        """A venue's contact for another Gala service (an erased one too: its tombstone
        says so); 404 if the venue has no such contact."""
        contact = await self._contacts.get(venue_id, contact_id)
        if contact is None:
            raise ContactNotFound()
        return contact

    async def list(
        self, principal: Principal, where: ContactFilter, sort: str, limit: int, cursor: str | None
    ) -> tuple[list[Contact], str | None]:
        ensure_role(principal, CONTACT_ROLES, "list contacts")
        return await self._contacts.page(principal.venue_id, where, sort, limit, cursor)

    async def update(
        self,
        principal: Principal,
        contact_id: str,
        patch: ContactPatch,
        status: ContactStatus | None = None,
    ) -> Contact:
        ensure_role(principal, CONTACT_ROLES, "change contacts")

        def change(contact: Contact) -> None:
            now = self._clock()
            contact.update(patch, now)
            if status is not None:
                contact.move_to(status, role=principal.role, now=now)

        return await self._change(principal.venue_id, contact_id, change)

    async def erase(self, principal: Principal, contact_id: str) -> None:
        ensure_role(principal, ERASE_ROLES, "erase contacts")
        await self._change(principal.venue_id, contact_id, lambda c: c.erase(self._clock()))

    async def upsert_by_email(
        self,
        venue_id: str,
        *,
        name: str,
        email: str,
        phone: str | None = None,
        lead_source: LeadSource = LeadSource.OTHER,
        custom_fields: dict[str, Any] | None = None,
    ) -> tuple[Contact, bool]:
        """Create the contact, or update the one with this email; ``True`` if created."""
        async for _ in save_attempts():
            existing = await self._contacts.by_email(venue_id, email.strip().lower())
            if existing is None:
                try:
                    return await self.create_in_venue(
                        venue_id,
                        name=name,
                        email=email,
                        phone=phone,
                        lead_source=lead_source,
                        custom_fields=custom_fields,
                    ), True
                except ContactAlreadyExists:
                    continue  # created meanwhile: update it instead
            patch = ContactPatch(
                name=name,
                phone=phone if phone else UNSET,
                custom_fields=custom_fields if custom_fields is not None else UNSET,
            )
            existing.update(patch, self._clock())
            if await self._save(existing):
                return existing, False
        raise ContactChangedConcurrently()

    # --- what other services tell us --------------------------------------------------

    async def apply_opportunity(self, event: OpportunityEvent) -> None:
        await self._change_if_present(
            event.venue_id, event.contact_id, lambda c: c.apply_opportunity(event, self._clock())
        )

    async def set_engagement(
        self, venue_id: str, contact_id: str, *, messages: int, signed: int, paid: int
    ) -> None:
        await self._change_if_present(
            venue_id,
            contact_id,
            lambda c: c.set_engagement(
                messages=messages, signed=signed, paid=paid, now=self._clock()
            ),
        )

    async def count_inquiries(self, venue_id: str, contact_id: str, inquiries: int) -> None:
        """The contact came back ``inquiries`` times (counted from its timeline)."""
        await self._change_if_present(
            venue_id, contact_id, lambda c: c.count_inquiries(inquiries, self._clock())
        )

    async def exists(self, venue_id: str, contact_id: str) -> bool:
        """Whether the venue has this contact, not erased (events about others are ignored)."""
        contact = await self._contacts.get(venue_id, contact_id)
        return contact is not None and not contact.erased

    # --- internals --------------------------------------------------------------------

    async def _load(self, venue_id: str, contact_id: str) -> Contact:
        contact = await self._contacts.get(venue_id, contact_id)
        if contact is None or contact.erased:
            raise ContactNotFound()
        return contact

    async def _save(self, contact: Contact) -> bool:
        try:
            return await self._contacts.save(contact)
        except EmailTaken as taken:
            existing = await self._contacts.by_email(contact.venue_id, taken.email)
            raise ContactAlreadyExists(existing.id if existing else "") from None

    async def _change(
        self, venue_id: str, contact_id: str, change: Callable[[Contact], None]
    ) -> Contact:
        async for _ in save_attempts():
            contact = await self._load(venue_id, contact_id)
            change(contact)
            if await self._save(contact):
                return contact
        raise ContactChangedConcurrently()

    async def _change_if_present(
        self, venue_id: str, contact_id: str, change: Callable[[Contact], None]
    ) -> None:
        """Apply an event's change; an unknown contact (of this venue) is ignored."""
        async for _ in save_attempts(SAVE_ATTEMPTS * 2):
            contact = await self._contacts.get(venue_id, contact_id)
            if contact is None:
                return
            change(contact)
            if await self._save(contact):
                return
        raise ContactChangedConcurrently()
