"""``GET /api/v1/contacts/{id}/timeline``: the contact's history, newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from contacts.leads.api import Contacts
from contacts.leads.domain import ContactNotFound
from contacts.timeline.repository import TimelineRepository
from gala.api import Cursor, Limit, PageOut, ResponseBody, problems
from gala.app import StoreDep
from gala.errors import Forbidden
from gala.identity import CurrentPrincipal

router = APIRouter(prefix="/api/v1/contacts", tags=["contacts"])


async def get_timeline(store: StoreDep) -> TimelineRepository:
    return TimelineRepository(store)


Timeline = Annotated[TimelineRepository, Depends(get_timeline)]


class TimelineEntryOut(ResponseBody):
    id: str
    at: datetime
    kind: str
    summary: str
    details: dict[str, Any]


@router.get("/{contact_id}/timeline", responses=problems(Forbidden, ContactNotFound))
async def contact_timeline(
    principal: CurrentPrincipal,
    contacts: Contacts,
    timeline: Timeline,
    contact_id: str,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> PageOut[TimelineEntryOut]:
    """Created, status changes, opportunities and stages, messages, documents, payments."""
    await contacts.get(principal, contact_id)  # the caller may see it, and it exists
    items, next_cursor = await timeline.page(principal.venue_id, contact_id, limit, cursor)
    return PageOut[TimelineEntryOut](
        items=[
            TimelineEntryOut(
                id=item["_id"],
                at=item["at"],
                kind=item["kind"],
                summary=item["summary"],
                details=item["details"],
            )
            for item in items
        ],
        next_cursor=next_cursor,
    )
