"""HTTP entry points for contacts: thin translations to the use cases.

``router`` is the public API (``/api/v1/contacts``); ``internal_router``
(``/internal/v1/contacts``) is for Gala's own services, with a service token.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response, status

from contacts.leads.domain import (
    ContactAlreadyExists,
    ContactChangedConcurrently,
    ContactNotFound,
    InvalidContact,
    InvalidTransition,
)
from contacts.leads.repository import ContactFilter, ContactRepository
from contacts.leads.schemas import (
    ContactOut,
    CreateContactIn,
    InternalContactOut,
    UpdateContactIn,
)
from contacts.leads.service import ContactService
from gala.api import Cursor, Limit, PageOut, problems
from gala.app import OutboxDep, StoreDep
from gala.contracts.contacts import ContactStatus, LeadSource
from gala.errors import Forbidden, InvalidInput
from gala.identity import CallingService, CurrentPrincipal

PREFIX = "/api/v1/contacts"
INTERNAL_PREFIX = "/internal/v1/contacts"


async def get_contact_service(store: StoreDep, outbox: OutboxDep) -> ContactService:
    return ContactService(ContactRepository(store, outbox))


Contacts = Annotated[ContactService, Depends(get_contact_service)]


class Sort(StrEnum):
    HEAT_DESC = "-leadHeat"
    HEAT = "leadHeat"
    CREATED_DESC = "-createdAt"
    CREATED = "createdAt"
    NAME = "name"
    NAME_DESC = "-name"


async def contact_filter(
    status: ContactStatus | None = None,
    lead_source: Annotated[LeadSource | None, Query(alias="leadSource")] = None,
    heat_min: Annotated[int | None, Query(alias="heatMin", ge=0, le=100)] = None,
    heat_max: Annotated[int | None, Query(alias="heatMax", ge=0, le=100)] = None,
    q: Annotated[
        str | None, Query(min_length=1, max_length=100, description="Name or email prefix")
    ] = None,
) -> ContactFilter:
    return ContactFilter(status, lead_source, heat_min, heat_max, q)


Filter = Annotated[ContactFilter, Depends(contact_filter)]

router = APIRouter(prefix=PREFIX, tags=["contacts"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=problems(Forbidden, ContactAlreadyExists, InvalidContact),
)
async def create_contact(
    principal: CurrentPrincipal, contacts: Contacts, body: CreateContactIn, response: Response
) -> ContactOut:
    """Add a contact (ADMIN, SALES); an email already in the venue is a 409 naming it."""
    contact = await contacts.create(principal, **body.details())
    response.headers["Location"] = f"{PREFIX}/{contact.id}"
    return ContactOut.of(contact)


@router.get("", responses=problems(Forbidden, InvalidInput))
async def list_contacts(
    principal: CurrentPrincipal,
    contacts: Contacts,
    where: Filter,
    sort: Sort = Sort.HEAT_DESC,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> PageOut[ContactOut]:
    """The venue's contacts, filtered and sorted, a page at a time (ADMIN, SALES)."""
    items, next_cursor = await contacts.list(principal, where, sort.value, limit, cursor)
    return PageOut[ContactOut](items=[ContactOut.of(c) for c in items], next_cursor=next_cursor)


@router.get("/{contact_id}", responses=problems(Forbidden, ContactNotFound))
async def get_contact(
    principal: CurrentPrincipal, contacts: Contacts, contact_id: str
) -> ContactOut:
    """One contact, with the reasons for its heat."""
    return ContactOut.of(await contacts.get(principal, contact_id))


@router.patch(
    "/{contact_id}",
    responses=problems(
        Forbidden,
        ContactNotFound,
        InvalidContact,
        InvalidTransition,
        ContactAlreadyExists,
        ContactChangedConcurrently,
    ),
)
async def update_contact(
    principal: CurrentPrincipal, contacts: Contacts, contact_id: str, body: UpdateContactIn
) -> ContactOut:
    """Change details and/or move the contact in its lifecycle."""
    try:
        patch = body.to_patch()
    except ValueError as exc:
        raise InvalidContact(str(exc)) from exc
    return ContactOut.of(await contacts.update(principal, contact_id, patch, body.status))


@router.delete(
    "/{contact_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(Forbidden, ContactNotFound),
)
async def erase_contact(principal: CurrentPrincipal, contacts: Contacts, contact_id: str) -> None:
    """Erase the person (a GDPR request, ADMIN): a tombstone stays, every service forgets."""
    await contacts.erase(principal, contact_id)


internal_router = APIRouter(prefix=INTERNAL_PREFIX, tags=["contacts (internal)"])


@internal_router.get("/{contact_id}", responses=problems(ContactNotFound))
async def get_for_service(
    _service: CallingService,
    contacts: Contacts,
    contact_id: Annotated[str, Path(min_length=1, max_length=128)],
    venue_id: Annotated[str, Query(alias="venueId", min_length=1, max_length=128)],
) -> InternalContactOut:
    """A venue's contact, erased or not (the pipeline asks when its copy lacks one)."""
    return InternalContactOut.of(await contacts.for_service(venue_id, contact_id))
