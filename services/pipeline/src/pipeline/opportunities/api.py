"""HTTP entry points for opportunities: thin translations to the use cases."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from gala.api import Cursor, Limit, PageOut, problems
from gala.app import RuntimeDep
from gala.contracts.pipeline import OpportunityOutcome
from gala.errors import Forbidden, InvalidInput
from gala.identity import CurrentPrincipal
from pipeline.board.repository import BoardRepository
from pipeline.board.service import BoardReadModel
from pipeline.contacts.domain import ContactUnconfirmed, UnknownContact
from pipeline.contacts.owner import ContactsOwner
from pipeline.contacts.repository import ContactCopyRepository
from pipeline.contacts.service import ContactDirectory
from pipeline.opportunities.domain import (
    InvalidOpportunity,
    OpportunityChangedConcurrently,
    OpportunityClosed,
    OpportunityNotFound,
)
from pipeline.opportunities.repository import OpportunityFilter, OpportunityRepository
from pipeline.opportunities.schemas import (
    CreateOpportunityIn,
    LoseIn,
    OpportunityOut,
    UpdateOpportunityIn,
)
from pipeline.opportunities.service import OpportunityService
from pipeline.rooms.domain import RoomBusy, RoomNotFound, RoomTaken
from pipeline.rooms.repository import RoomRepository
from pipeline.settings import pipeline_settings
from pipeline.stages.domain import StagesChangedDuringMove
from pipeline.stages.repository import SetupRepository

PREFIX = "/api/v1/opportunities"


async def opportunity_service(runtime: RuntimeDep) -> OpportunityService:
    store = runtime.store
    opportunities = OpportunityRepository(store, runtime.outbox)
    settings = pipeline_settings(runtime.settings)
    owner = ContactsOwner(
        settings.pipeline_contacts_url,
        runtime.tokens,
        timeout=settings.pipeline_contacts_timeout_seconds,
    )
    return OpportunityService(
        opportunities,
        SetupRepository(store),
        RoomRepository(store),
        ContactDirectory(ContactCopyRepository(store), opportunities, owner),
        BoardReadModel(BoardRepository(store)),
    )


Opportunities = Annotated[OpportunityService, Depends(opportunity_service)]


async def opportunity_filter(
    stage: Annotated[str | None, Query(max_length=200, description="Stage id")] = None,
    contact_id: Annotated[str | None, Query(alias="contactId", max_length=200)] = None,
    event_type: Annotated[str | None, Query(alias="eventType", max_length=1000)] = None,
    room_assignment: Annotated[str | None, Query(alias="roomAssignment", max_length=200)] = None,
    outcome: OpportunityOutcome | None = None,
    event_from: Annotated[
        datetime | None, Query(alias="eventDateFrom", description="Inclusive")
    ] = None,
    event_to: Annotated[
        datetime | None, Query(alias="eventDateTo", description="Exclusive")
    ] = None,
) -> OpportunityFilter:
    return OpportunityFilter(
        stage, contact_id, event_type, room_assignment, outcome, event_from, event_to
    )


Filter = Annotated[OpportunityFilter, Depends(opportunity_filter)]
router = APIRouter(prefix=PREFIX, tags=["opportunities"])
ROOM_PROBLEMS = (RoomNotFound, RoomTaken, RoomBusy)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=problems(
        Forbidden, InvalidOpportunity, UnknownContact, ContactUnconfirmed, *ROOM_PROBLEMS
    ),
)
async def create_opportunity(
    principal: CurrentPrincipal,
    opportunities: Opportunities,
    body: CreateOpportunityIn,
    response: Response,
) -> OpportunityOut:
    """Open an opportunity for a contact of the venue (ADMIN, SALES), in the venue's
    currency; a room it would hold on its date must be free (409 names who holds it)."""
    opportunity = await opportunities.create(
        principal,
        contact_id=body.contact_id,
        room_id=body.room_assignment,
        **body.details(),
    )
    response.headers["Location"] = f"{PREFIX}/{opportunity.id}"
    return OpportunityOut.of(opportunity)


@router.get("", responses=problems(Forbidden, InvalidInput))
async def list_opportunities(
    principal: CurrentPrincipal,
    opportunities: Opportunities,
    where: Filter,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> PageOut[OpportunityOut]:
    """The venue's opportunities, newest first, filtered, a page at a time."""
    items, next_cursor = await opportunities.list(principal, where, limit, cursor)
    return PageOut[OpportunityOut](
        items=[OpportunityOut.of(o) for o in items], next_cursor=next_cursor
    )


@router.get("/{opportunity_id}", responses=problems(Forbidden, OpportunityNotFound))
async def get_opportunity(
    principal: CurrentPrincipal, opportunities: Opportunities, opportunity_id: str
) -> OpportunityOut:
    return OpportunityOut.of(await opportunities.get(principal, opportunity_id))


@router.patch(
    "/{opportunity_id}",
    responses=problems(
        Forbidden,
        OpportunityNotFound,
        InvalidOpportunity,
        UnknownContact,
        ContactUnconfirmed,
        OpportunityClosed,
        OpportunityChangedConcurrently,
        StagesChangedDuringMove,
        *ROOM_PROBLEMS,
    ),
)
async def update_opportunity(
    principal: CurrentPrincipal,
    opportunities: Opportunities,
    opportunity_id: str,
    body: UpdateOpportunityIn,
) -> OpportunityOut:
    """Change details, the stage (id or name), or the room (``roomAssignment``)."""
    try:
        fields = body.fields()
    except ValueError as exc:
        raise InvalidOpportunity(str(exc)) from exc
    opportunity = await opportunities.update(
        principal,
        opportunity_id,
        fields=fields,
        contact_id=body.contact_id,
        room_id=body.room(),
    )
    return OpportunityOut.of(opportunity)


@router.post(
    "/{opportunity_id}/win",
    responses=problems(
        Forbidden, OpportunityNotFound, InvalidOpportunity, OpportunityClosed, *ROOM_PROBLEMS
    ),
)
async def win_opportunity(
    principal: CurrentPrincipal, opportunities: Opportunities, opportunity_id: str
) -> OpportunityOut:
    """Win it (needs an event date; books its room). Winning a won one changes nothing."""
    return OpportunityOut.of(await opportunities.win(principal, opportunity_id))


@router.post(
    "/{opportunity_id}/lose",
    responses=problems(Forbidden, OpportunityNotFound, InvalidOpportunity, OpportunityClosed),
)
async def lose_opportunity(
    principal: CurrentPrincipal, opportunities: Opportunities, opportunity_id: str, body: LoseIn
) -> OpportunityOut:
    """Lose it for a reason (frees its room). Losing a lost one changes nothing."""
    return OpportunityOut.of(await opportunities.lose(principal, opportunity_id, body.reason))
