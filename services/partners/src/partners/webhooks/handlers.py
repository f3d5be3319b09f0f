"""The webhooks' event reactions (registered in the service's subscriptions.py):

- every published event of the other services -> one delivery per enabled endpoint of
  its venue whose filters match (ids derive from endpoint and event: an event delivered
  again by Kafka makes nothing new); the engine sends them;
- user events -> the copy of the venue's ADMINs (the newest state by event time), who
  are mailed when an endpoint is disabled.
"""

from __future__ import annotations

from gala.contracts.contacts import UserEvent
from gala.events import Event, EventContext
from partners.deliveries.repository import DeliveryRepository
from partners.deliveries.service import DeliveryService
from partners.webhooks.repository import AdminRepository, EndpointRepository
from partners.webhooks.service import deliverable_events

FAN_OUT_HANDLER = "webhooks.fan_out"
ADMINS_HANDLER = "webhooks.admins"

__all__ = ["ADMINS_HANDLER", "FAN_OUT_HANDLER", "deliverable_events", "fan_out", "keep_admin"]


async def fan_out(event: Event, ctx: EventContext) -> None:
    service = DeliveryService(
        ctx.store, DeliveryRepository(ctx.store), EndpointRepository(ctx.store, ctx.outbox)
    )
    await service.fan_out(ctx.envelope)


async def keep_admin(event: UserEvent, ctx: EventContext) -> None:
    await AdminRepository(ctx.store).keep(
        event.venue_id,
        event.user_id,
        event.email,
        event.name,
        event.role.value,
        event.active,
        ctx.envelope.time,
    )
