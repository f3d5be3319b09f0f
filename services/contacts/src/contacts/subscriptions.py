"""Every event the contacts service reacts to, in one place.

- its own contact events -> the contact's timeline (an erasure forgets the timeline);
- opportunity events -> the contact's status and heat, and its timeline;
- the client's engagement (a client's chat message, a signed document, a payment)
  -> the timeline, then the engagement counts (recounted from the timeline, so a
  redelivered event never counts twice) and so the heat.

Events about a contact this service does not have (another venue's, or erased) are
ignored. Every handler is idempotent: the timeline is keyed by event id, the contact's
state is set from the event, never incremented.
"""

from __future__ import annotations

from contacts.leads.repository import ContactRepository
from contacts.leads.service import ContactService
from contacts.timeline.entries import (
    CLIENT_MESSAGE,
    DOCUMENT_SIGNED,
    PAYMENT_PAID,
    entry_for,
    occurred_at,
)
from contacts.timeline.repository import TimelineRepository
from gala.contracts.billing import DocumentSigned, PaymentPaid
from gala.contracts.chat import MessageSent
from gala.contracts.contacts import (
    ContactCreated,
    ContactErased,
    ContactEvent,
    ContactStatusChanged,
    ContactUpdated,
)
from gala.contracts.pipeline import OPPORTUNITY_EVENTS, OpportunityEvent
from gala.events import EventContext, Subscriptions
from gala.events.model import Event
from gala.identity import Role

subscriptions = Subscriptions()


def _contacts(ctx: EventContext) -> ContactService:
    return ContactService(ContactRepository(ctx.store, ctx.outbox))


async def _record(event: Event, ctx: EventContext, venue_id: str, contact_id: str) -> bool:
    """Add the event to the contact's timeline; ``False`` when there is no such contact."""
    entry = entry_for(event)
    if entry is None or not await _contacts(ctx).exists(venue_id, contact_id):
        return False
    await TimelineRepository(ctx.store).record(
        event_id=ctx.envelope.id,
        venue_id=venue_id,
        contact_id=contact_id,
        at=occurred_at(event, ctx.envelope.time),
        entry=entry,
    )
    return True


# --- the contact's own history ------------------------------------------------------


async def contact_history(event: ContactEvent, ctx: EventContext) -> None:
    await _record(event, ctx, event.venue_id, event.contact_id)


for contact_event in (ContactCreated, ContactStatusChanged, ContactUpdated):
    subscriptions.on(contact_event, name="timeline.contact")(contact_history)


@subscriptions.on(ContactErased, name="timeline.erase")
async def forget_history(event: ContactErased, ctx: EventContext) -> None:
    await TimelineRepository(ctx.store).forget(event.venue_id, event.contact_id)


# --- opportunities ------------------------------------------------------------------


async def follow_opportunity(event: OpportunityEvent, ctx: EventContext) -> None:
    await _contacts(ctx).apply_opportunity(event)
    await _record(event, ctx, event.venue_id, event.contact_id)


for opportunity_event in OPPORTUNITY_EVENTS:
    subscriptions.on(opportunity_event, name="leads.opportunity")(follow_opportunity)


# --- the client's engagement --------------------------------------------------------


async def _engaged(event: Event, ctx: EventContext, venue_id: str, contact_id: str | None) -> None:
    if contact_id is None or not await _record(event, ctx, venue_id, contact_id):
        return
    timeline = TimelineRepository(ctx.store)
    await _contacts(ctx).set_engagement(
        venue_id,
        contact_id,
        messages=await timeline.count(venue_id, contact_id, CLIENT_MESSAGE),
        signed=await timeline.count(venue_id, contact_id, DOCUMENT_SIGNED),
        paid=await timeline.count(venue_id, contact_id, PAYMENT_PAID),
    )


@subscriptions.on(MessageSent, name="leads.engagement.message")
async def client_wrote(event: MessageSent, ctx: EventContext) -> None:
    if event.sender_role == Role.CLIENT:
        await _engaged(event, ctx, event.venue_id, event.contact_id)


@subscriptions.on(DocumentSigned, name="leads.engagement.signed")
async def client_signed(event: DocumentSigned, ctx: EventContext) -> None:
    await _engaged(event, ctx, event.venue_id, event.contact_id)


@subscriptions.on(PaymentPaid, name="leads.engagement.paid")
async def client_paid(event: PaymentPaid, ctx: EventContext) -> None:
    await _engaged(event, ctx, event.venue_id, event.contact_id)
