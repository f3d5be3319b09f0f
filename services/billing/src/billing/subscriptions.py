"""Every event the billing service reacts to, in one place.

- an opportunity won -> its payment schedule, made exactly once (each installment's id
  derives from the opportunity, and inserting an existing one is refused);
- an opportunity lost -> its unpaid installments are cancelled (paid ones are kept), and
  their open checkout sessions expired at Stripe;
- any opportunity event -> the deal copy (venue, contact, currency, event date);
- contact events -> the contact copy (who reminders are mailed to); an erasure forgets
  the name and address;
- any project event -> the deal's project and CLIENT users (who may see its payments
  and documents; the newest event by time replaces the list, so a client taken off
  loses them), and the project on the opportunity's payments.

Every handler is idempotent: creation is keyed, cancelling a cancelled installment
changes nothing, and the copies keep the newest state by event time.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from billing.checkout.stripe_gateway import StripeGateway
from billing.contacts.domain import ContactCopy
from billing.contacts.repository import ContactCopyRepository
from billing.deals.domain import Deal
from billing.deals.repository import DealRepository
from billing.payments.domain import WonDeal
from billing.payments.repository import PaymentRepository
from billing.payments.service import PaymentService
from billing.policy.repository import PolicyRepository
from billing.reminders.service import schedule_from
from billing.settings import billing_settings
from gala.contracts.contacts import (
    ContactCreated,
    ContactErased,
    ContactEvent,
    ContactHeatChanged,
    ContactStatusChanged,
    ContactUpdated,
)
from gala.contracts.pipeline import (
    OPPORTUNITY_EVENTS,
    OpportunityEvent,
    OpportunityLost,
    OpportunityWon,
)
from gala.contracts.projects import PROJECT_EVENTS, ProjectEvent
from gala.events import EventContext, Subscriptions
from gala.money import to_minor

log = logging.getLogger(__name__)
subscriptions = Subscriptions()


def _payments(ctx: EventContext, checkouts: StripeGateway | None = None) -> PaymentService:
    return PaymentService(
        PaymentRepository(ctx.store, ctx.outbox),
        PolicyRepository(ctx.store),
        DealRepository(ctx.store),
        schedule_from(billing_settings(ctx.settings)),
        checkouts=checkouts,
    )


async def keep_deal(event: OpportunityEvent, ctx: EventContext) -> None:
    deal = Deal(
        opportunity_id=event.opportunity_id,
        venue_id=event.venue_id,
        outcome=event.outcome,
        currency=event.currency,
        name=event.name,
        contact_id=event.contact_id,
        event_date=event.event_date,
    )
    await DealRepository(ctx.store).keep_opportunity(deal, ctx.envelope.time)


for opportunity_event in OPPORTUNITY_EVENTS:
    subscriptions.on(opportunity_event, name="deals.opportunity")(keep_deal)


@subscriptions.on(OpportunityWon, name="payments.schedule")
async def opportunity_won(event: OpportunityWon, ctx: EventContext) -> None:
    if event.currency is None or event.value is None:
        log.info(
            "won without a value: nothing to schedule",
            extra={"opportunityId": event.opportunity_id},
        )
        return
    known = await DealRepository(ctx.store).get(event.venue_id, event.opportunity_id)
    deal = WonDeal(
        venue_id=event.venue_id,
        opportunity_id=event.opportunity_id,
        contact_id=event.contact_id,
        value_minor=to_minor(event.value, event.currency),
        currency=event.currency,
        event_date=event.event_date,
        won_at=event.won_at,
        project_id=known.project_id if known else None,
    )
    await _payments(ctx).schedule(deal)


@subscriptions.on(OpportunityLost, name="payments.cancel")
async def opportunity_lost(event: OpportunityLost, ctx: EventContext) -> None:
    stripe = StripeGateway(billing_settings(ctx.settings))  # rare: a client of its own
    try:
        await _payments(ctx, stripe).cancel_open(
            event.venue_id, event.opportunity_id, f"Opportunity lost: {event.reason}"
        )
    finally:
        await stripe.aclose()


@subscriptions.on_batch(
    ContactCreated, ContactUpdated, ContactStatusChanged, ContactHeatChanged, name="contacts.copy"
)
async def keep_contacts(batch: Sequence[tuple[ContactEvent, EventContext]]) -> None:
    """A run of contact events (an import's), kept in one bulk write."""
    copies = [
        (ContactCopy(e.contact_id, e.venue_id, e.name, e.email), ctx.envelope.time)
        for e, ctx in batch
    ]
    await ContactCopyRepository(batch[0][1].store).keep_many(copies)


@subscriptions.on(ContactErased, name="contacts.erase")
async def erase_contact(event: ContactErased, ctx: EventContext) -> None:
    await ContactCopyRepository(ctx.store).erase(event.venue_id, event.contact_id, event.erased_at)


async def keep_project(event: ProjectEvent, ctx: EventContext) -> None:
    # the payments first: once the deal names the client, what they see names the project
    await PaymentRepository(ctx.store, ctx.outbox).set_project(
        event.venue_id, event.opportunity_id, event.project_id
    )
    await DealRepository(ctx.store).keep_project(
        event.venue_id,
        event.opportunity_id,
        event.project_id,
        list(event.client_ids),
        ctx.envelope.time,
    )


for project_event in PROJECT_EVENTS:
    subscriptions.on(project_event, name="deals.project")(keep_project)
