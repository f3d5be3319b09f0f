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

from collections.abc import Sequence

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


@subscriptions.on_batch(OpportunityWon, name="projects.create")
async def opportunities_won(batch: Sequence[tuple[OpportunityWon, EventContext]]) -> None:
    """A run of won opportunities (a burst): their projects in one insert, each project's
    events caused by the event that won it."""
    wons = [
        (
            Won(
                venue_id=event.venue_id,
                opportunity_id=event.opportunity_id,
                contact_id=event.contact_id,
                name=event.name,
                event_type=event.event_type,
                event_date=event.event_date or event.won_at,
                as_of=ctx.envelope.time,
            ),
            ctx.bound,
        )
        for event, ctx in batch
    ]
    await _projects(batch[0][1]).won_many(wons)


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


@subscriptions.on_batch(
    ContactCreated, ContactUpdated, ContactStatusChanged, ContactHeatChanged, name="people.contacts"
)
async def contacts_changed(batch: Sequence[tuple[ContactEvent, EventContext]]) -> None:
    """A run of contact events (an import's): the copies in one bulk write; a contact
    whose address is new and who has projects links its client users, as its event
    (the event's causation: a redelivery records the same event ids)."""
    ctx = batch[0][1]
    changed = await _people(ctx).contacts_seen(
        [ContactCopy(e.contact_id, e.venue_id, e.email, False, c.envelope.time) for e, c in batch]
    )
    contexts = {(e.contact_id, c.envelope.time): c for e, c in batch}
    venues = {contact.venue_id for contact in changed}
    projects = ProjectRepository(ctx.store, ctx.outbox)
    for venue_id in sorted(venues):
        ids = [c.id for c in changed if c.venue_id == venue_id]
        with_projects = await projects.contacts_with_projects(venue_id, ids)
        for contact in changed:
            if contact.venue_id != venue_id or contact.id not in with_projects:
                continue
            with contexts[(contact.id, contact.as_of)].bound():
                await _projects(ctx).link_clients(venue_id, [contact.id])


@subscriptions.on(ContactErased, name="people.contacts.erase")
async def contact_erased(event: ContactErased, ctx: EventContext) -> None:
    await _people(ctx).contact_erased(
        ContactCopy(event.contact_id, event.venue_id, None, True, event.erased_at)
    )
