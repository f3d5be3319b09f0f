"""Use cases of the people copies: follow user and contact events, answer lookups."""

from __future__ import annotations

from collections.abc import Sequence

from gala.identity import Role
from gala.projections import newest_copies, replaces
from projects.people.domain import (
    ContactCopy,
    UnknownAssignee,
    UnknownClient,
    UserCopy,
    normalize_email,
)
from projects.people.repository import PeopleRepository


class People:
    def __init__(self, people: PeopleRepository) -> None:
        self._people = people

    async def user_seen(self, user: UserCopy) -> bool:
        """A user event: keep the user; ``True`` if this is now the newest copy."""
        return await self._people.keep_user(
            UserCopy(
                user.id,
                user.venue_id,
                normalize_email(user.email),
                user.role,
                user.active,
                user.as_of,
            )
        )

    async def contact_seen(self, contact: ContactCopy) -> bool:
        """A contact event: keep its e-mail address; ``True`` if the address is new (its
        client users may have to join its projects)."""
        email = normalize_email(contact.email) if contact.email else None
        before = await self._people.contact(contact.venue_id, contact.id)
        kept = await self._people.keep_contact(
            ContactCopy(contact.id, contact.venue_id, email, False, contact.as_of)
        )
        return kept and (before is None or before.email != email)

    async def contacts_seen(self, contacts: Sequence[ContactCopy]) -> list[ContactCopy]:
        """``contact_seen`` for a run of contact events, in one bulk write: the newest
        copy of each contact whose address is new."""
        copies = [
            ContactCopy(c.id, c.venue_id, normalize_email(c.email) if c.email else None,
                        False, c.as_of)
            for c in contacts
        ]  # fmt: skip
        before = await self._people.contacts_by_id([c.id for c in copies])
        await self._people.keep_contacts(copies)
        changed = []
        for copy in newest_copies(copies).values():
            old = before.get(copy.id)
            written = replaces(copy, old, final=old is not None and old.erased)
            if written and (old is None or old.email != copy.email):
                changed.append(copy)
        return changed

    async def contact_erased(self, contact: ContactCopy) -> None:
        await self._people.erase_contact(contact)

    async def require_assignee(self, venue_id: str, user_id: str) -> UserCopy:
        """An active user of the venue, else 422."""
        user = await self._people.user(venue_id, user_id)
        if user is None or not user.active:
            raise UnknownAssignee(user_id)
        return user

    async def require_client(self, venue_id: str, user_id: str) -> UserCopy:
        """An active CLIENT user of the venue, else 422."""
        user = await self._people.user(venue_id, user_id)
        if user is None or not user.active or not user.is_client:
            raise UnknownClient(user_id)
        return user

    async def clients_of_contact(self, venue_id: str, contact_id: str | None) -> list[str]:
        """The active CLIENT users with the contact's e-mail address, in the same venue."""
        if contact_id is None:
            return []
        contact = await self._people.contact(venue_id, contact_id)
        if contact is None or contact.erased or contact.email is None:
            return []
        users = await self._people.users_with_email(venue_id, contact.email)
        return sorted(u.id for u in users if u.role is Role.CLIENT and u.active)

    async def clients_of_contacts(
        self, venue_id: str, contact_ids: Sequence[str]
    ) -> dict[str, list[str]]:
        """``clients_of_contact`` for many contacts of one venue in two reads (a run of
        won opportunities): by contact id, for the contacts that have any."""
        found = await self._people.contacts_by_id(contact_ids)
        emails = {
            c.id: c.email
            for c in found.values()
            if c.venue_id == venue_id and not c.erased and c.email is not None
        }
        if not emails:
            return {}
        users = await self._people.users_with_emails(venue_id, sorted(set(emails.values())))
        clients: dict[str, list[str]] = {}
        for contact_id, email in emails.items():
            ids = sorted(u.id for u in users if u.email == email and u.is_client and u.active)
            if ids:
                clients[contact_id] = ids
        return clients

    async def contacts_of_client(self, user: UserCopy) -> list[str]:
        """The contacts an active CLIENT user is (by e-mail address)."""
        if not user.is_client or not user.active:
            return []
        contacts = await self._people.contacts_with_email(
            user.venue_id, normalize_email(user.email)
        )
        return [c.id for c in contacts]
