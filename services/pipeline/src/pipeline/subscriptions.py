"""Every event the pipeline service reacts to, in one place.

- contact events -> the contact projection (id, venue, name, erased), which is how the
  pipeline checks ``contactId`` without calling the contacts service; an erasure also
  forgets the contact's name in every opportunity that copied it;
- a signed document naming an opportunity -> a stage hint: an open opportunity in
  "proposal sent" moves to "contract sent" (by the default stages' stable ids, only
  forward, only from that stage; a venue that removed either stage gets no hint);
- a paid payment naming an opportunity -> a stage hint: an open opportunity moves
  forward to the venue's final stage (the stage closest to a win). It is never won by
  it: winning stays a person's decision (it needs an event date and books the room).
  A move that would need a room that another opportunity holds is not made;
- the pipeline's own opportunity events -> the board's read model takes the opportunity
  as stored now (the same idempotent apply the use cases make after each write: this
  repairs a crash between the opportunity's write and the read model's).

Every handler is idempotent: the projection keeps the newest state by event time and
an erasure is final; a hint moves only forward from a given stage, so a redelivered
event finds nothing left to do; the board's apply is guarded by the opportunity's
version, so a replay or an older state changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from gala.contracts.billing import DocumentSigned, PaymentPaid
from gala.contracts.contacts import (
    ContactCreated,
    ContactErased,
    ContactEvent,
    ContactHeatChanged,
    ContactStatusChanged,
    ContactUpdated,
)
from gala.contracts.pipeline import OPPORTUNITY_EVENTS, OpportunityEvent
from gala.events import EventContext, Subscriptions
from pipeline.board.repository import BoardRepository
from pipeline.board.service import BoardReadModel
from pipeline.contacts.domain import ContactCopy
from pipeline.contacts.repository import ContactCopyRepository
from pipeline.contacts.service import ContactDirectory
from pipeline.opportunities.domain import OpportunityError
from pipeline.opportunities.repository import OpportunityRepository
from pipeline.opportunities.service import OpportunityService
from pipeline.rooms.domain import RoomError
from pipeline.rooms.repository import RoomRepository
from pipeline.stages.domain import CONTRACT_SENT, PROPOSAL_SENT, PipelineSetup, Stage
from pipeline.stages.repository import SetupRepository

log = logging.getLogger(__name__)
subscriptions = Subscriptions()


def _directory(ctx: EventContext) -> ContactDirectory:
    return ContactDirectory(
        ContactCopyRepository(ctx.store), OpportunityRepository(ctx.store, ctx.outbox)
    )


def _opportunities(ctx: EventContext) -> OpportunityService:
    opportunities = OpportunityRepository(ctx.store, ctx.outbox)
    return OpportunityService(
        opportunities,
        SetupRepository(ctx.store),
        RoomRepository(ctx.store),
        _directory(ctx),
        BoardReadModel(BoardRepository(ctx.store)),
    )


# --- the contact projection ---------------------------------------------------------


@subscriptions.on_batch(
    ContactCreated, ContactUpdated, ContactStatusChanged, ContactHeatChanged, name="contacts.copy"
)
async def copy_contacts(batch: Sequence[tuple[ContactEvent, EventContext]]) -> None:
    """A run of contact events (an import's), kept in one bulk write."""
    await _directory(batch[0][1]).seen_many(
        [ContactCopy(e.contact_id, e.venue_id, e.name, False, c.envelope.time) for e, c in batch]
    )


@subscriptions.on(ContactErased, name="contacts.erase")
async def erase_contact(event: ContactErased, ctx: EventContext) -> None:
    await _directory(ctx).erased(event.venue_id, event.contact_id, event.erased_at)


# --- stage hints ----------------------------------------------------------------------


def contract_sent(setup: PipelineSetup) -> tuple[Stage, str | None] | None:
    target = setup.by_id(CONTRACT_SENT)
    if target is None or setup.by_id(PROPOSAL_SENT) is None:
        return None
    return target, PROPOSAL_SENT


def final_stage(setup: PipelineSetup) -> tuple[Stage, str | None] | None:
    return setup.last, None


Pick = Callable[[PipelineSetup], tuple[Stage, str | None] | None]


async def _hint(ctx: EventContext, venue_id: str, opportunity_id: str | None, pick: Pick) -> None:
    if opportunity_id is None:
        return
    try:
        await _opportunities(ctx).hint(venue_id, opportunity_id, pick)
    except (RoomError, OpportunityError) as exc:
        # e.g. its room is held by another opportunity that day: the hint is not taken
        log.info(
            "stage hint not applied",
            extra={"opportunityId": opportunity_id, "reason": exc.detail},
        )


@subscriptions.on(DocumentSigned, name="opportunities.hint.signed")
async def document_signed(event: DocumentSigned, ctx: EventContext) -> None:
    await _hint(ctx, event.venue_id, event.opportunity_id, contract_sent)


@subscriptions.on(PaymentPaid, name="opportunities.hint.paid")
async def payment_paid(event: PaymentPaid, ctx: EventContext) -> None:
    await _hint(ctx, event.venue_id, event.opportunity_id, final_stage)


# --- the board's read model ------------------------------------------------------------


async def board_apply(event: OpportunityEvent, ctx: EventContext) -> None:
    await BoardReadModel(BoardRepository(ctx.store)).refresh(event.venue_id, event.opportunity_id)


for opportunity_event in OPPORTUNITY_EVENTS:
    subscriptions.on(opportunity_event, name="board.apply")(board_apply)
