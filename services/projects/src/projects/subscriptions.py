"""Every event the projects service reacts to, in one place.

- an opportunity won -> its project, made exactly once (the project id derives from the
  opportunity's, and the insert of an existing one is refused);
- a later change of the opportunity -> the project follows a new event date (changes that
  happened before the last one followed are ignored);
- user events -> the user copy (assignees must be active users of the venue); a CLIENT
  user joins the projects of the contact with their e-mail address;
- contact events -> the contact's e-mail address (how client users are found); an
  erasure forgets it.

Every handler is idempotent: creation is keyed by the opportunity, copies keep the
newest state by event time, and adding a client who is already there changes nothing.
"""

from __future__ import annotations

from gala.contracts.contacts import (
    USER_EVENTS,
    ContactCreated,
    ContactErased,
    ContactEvent,
    ContactHeatChanged,
    ContactStatusChanged,
    ContactUpdated,
    UserEvent,
)
from gala.contracts.pipeline import (
    OpportunityEvent,
    OpportunityStageChanged,
    OpportunityUpdated,
    OpportunityWon,
)
from gala.events import EventContext, Subscriptions
from projects.people.domain import ContactCopy, UserCopy
from projects.people.repository import PeopleRepository
from projects.people.service import People
from projects.projects.domain import Won
from projects.projects.repository import ProjectRepository
from projects.projects.service import ProjectService
from projects.templates.repository import TemplateRepository

subscriptions = Subscriptions()


def _people(ctx: EventContext) -> People:
    return People(PeopleRepository(ctx.store))


def _projects(ctx: EventContext) -> ProjectService:
    return ProjectService(
        ProjectRepository(ctx.store, ctx.outbox), TemplateRepository(ctx.store), _people(ctx)
    )


# --- opportunities --------------------------------------------------------------------


@subscriptions.on(OpportunityWon, name="projects.create")
async def opportunity_won(event: OpportunityWon, ctx: EventContext) -> None:
    won = Won(
        venue_id=event.venue_id,
        opportunity_id=event.opportunity_id,
        contact_id=event.contact_id,
        name=event.name,
        event_type=event.event_type,
        event_date=event.event_date or event.won_at,
        as_of=ctx.envelope.time,
    )
    await _projects(ctx).won(won)


async def opportunity_changed(event: OpportunityEvent, ctx: EventContext) -> None:
    await _projects(ctx).follow_event_date(
        event.venue_id, event.opportunity_id, event.event_date, ctx.envelope.time
    )


for opportunity_event in (OpportunityUpdated, OpportunityStageChanged):
    subscriptions.on(opportunity_event, name="projects.reschedule")(opportunity_changed)


# --- people ---------------------------------------------------------------------------


async def user_changed(event: UserEvent, ctx: EventContext) -> None:
    user = UserCopy(
        event.user_id, event.venue_id, event.email, event.role, event.active, ctx.envelope.time
    )
    people = _people(ctx)
    if await people.user_seen(user):
        contacts = await people.contacts_of_client(user)
        await _projects(ctx).link_clients(user.venue_id, contacts)


for user_event in USER_EVENTS:
    subscriptions.on(user_event, name="people.users")(user_changed)


async def contact_changed(event: ContactEvent, ctx: EventContext) -> None:
    contact = ContactCopy(event.contact_id, event.venue_id, event.email, False, ctx.envelope.time)
    if await _people(ctx).contact_seen(contact):
        await _projects(ctx).link_clients(event.venue_id, [event.contact_id])


for contact_event in (ContactCreated, ContactUpdated, ContactStatusChanged, ContactHeatChanged):
    subscriptions.on(contact_event, name="people.contacts")(contact_changed)


@subscriptions.on(ContactErased, name="people.contacts.erase")
async def contact_erased(event: ContactErased, ctx: EventContext) -> None:
    await _people(ctx).contact_erased(
        ContactCopy(event.contact_id, event.venue_id, None, True, event.erased_at)
    )
