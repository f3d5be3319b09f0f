"""HTTP entry point of the venue event log (a partner app's key of the venue, or its
ADMIN): the venue's events in the order they were logged, cursor-paged."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from gala.api import Limit, problems
from gala.app import RuntimeDep
from gala.errors import Forbidden, InvalidInput
from gala.events.model import registry
from gala.identity import CurrentPrincipal
from partners.events.domain import CursorCodec, EventQuery, InvalidEventQuery, TypeFilter
from partners.events.repository import EventLogRepository
from partners.events.schemas import CloudEventOut, EventPageOut
from partners.events.service import EventLog, check_since
from partners.settings import partners_settings

PREFIX = "/api/v1/partners/events"


async def get_event_log(runtime: RuntimeDep) -> EventLog:
    settings = partners_settings(runtime.settings)
    return EventLog(
        EventLogRepository(runtime.store),
        grace=timedelta(seconds=settings.event_log_gap_grace_seconds),
    )


async def get_cursors(runtime: RuntimeDep) -> CursorCodec:
    return CursorCodec(runtime.settings.internal_token_secret.get_secret_value())


Log = Annotated[EventLog, Depends(get_event_log)]
Cursors = Annotated[CursorCodec, Depends(get_cursors)]

router = APIRouter(prefix=PREFIX, tags=["event log"])


@router.get("", responses=problems(Forbidden, InvalidEventQuery, InvalidInput))
async def list_events(
    principal: CurrentPrincipal,
    events: Log,
    cursors: Cursors,
    after: Annotated[
        str | None,
        Query(max_length=512, description="The `nextCursor` of the previous page."),
    ] = None,
    types: Annotated[
        list[str] | None,
        Query(
            max_length=50,
            description="Only these types: comma-separated and/or repeated; exact"
            " (`gala.opportunity.won.v1`) or an aggregate's (`gala.payment.*`).",
        ),
    ] = None,
    since: Annotated[
        datetime | None,
        Query(description="Only events whose time is at or after this (RFC 3339)."),
    ] = None,
    limit: Limit = 50,
) -> EventPageOut:
    """The venue's events in the order they were logged (each aggregate's in the order
    it published them), as CloudEvents, a page at a time. Keep `nextCursor`: from it, a
    partner that was away gets every event it missed, each once. Kept for at least the
    retention period (30 days by default)."""
    venue_id = principal.venue_id
    query = EventQuery(
        after=cursors.decode(venue_id, after) if after else None,
        types=TypeFilter.parse(types or (), registry.types()),
        since=check_since(since),
        limit=limit,
    )
    page = await events.page(principal, query)
    return EventPageOut(
        items=[CloudEventOut.of(event) for event in page.items],
        next_cursor=cursors.encode(venue_id, page.last),
        has_more=page.more,
    )
