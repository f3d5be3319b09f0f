"""The event log's reactions (registered in ``partners.subscriptions``): every published
event of every other service is appended to its venue's log; a contact's erasure erases
what the log holds about them."""

from __future__ import annotations

from datetime import timedelta

from gala.contracts.contacts import ContactErased
from gala.events.consumer import EventContext
from gala.events.model import Event
from partners.events.repository import EventLogRepository
from partners.events.service import EventLog
from partners.published import events_of_other_services
from partners.settings import partners_settings

LOG_HANDLER = "events.log"
ERASURE_HANDLER = "events.erasure"


def consumed_event_types() -> list[type[Event]]:
    """Every event the log keeps: those of the other services."""
    return events_of_other_services()


def event_log(ctx: EventContext) -> EventLog:
    settings = partners_settings(ctx.settings)
    return EventLog(
        EventLogRepository(ctx.store),
        grace=timedelta(seconds=settings.event_log_gap_grace_seconds),
    )


async def append_to_log(event: Event, ctx: EventContext) -> None:
    await event_log(ctx).append(ctx.envelope, event)


async def erase_from_log(event: ContactErased, ctx: EventContext) -> None:
    await event_log(ctx).erase_contact(event.venue_id, event.contact_id)
