"""HTTP entry points for an endpoint's deliveries: the log, a test ping, redelivery and
recovery. Thin translations to the use cases."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, status

from gala.api import Cursor, Limit, PageOut, problems
from gala.app import OutboxDep, StoreDep
from gala.errors import Forbidden, InvalidInput
from gala.identity import CurrentPrincipal
from partners.deliveries.domain import DeliveryNotFound, DeliveryStatus, EndpointDisabledError
from partners.deliveries.repository import DeliveryRepository
from partners.deliveries.schemas import DeliveryOut, RecoverIn, RecoverOut
from partners.deliveries.service import DeliveryService
from partners.webhooks.api import PREFIX
from partners.webhooks.domain import EndpointNotFound
from partners.webhooks.repository import EndpointRepository


async def delivery_service(store: StoreDep, outbox: OutboxDep) -> DeliveryService:
    return DeliveryService(store, DeliveryRepository(store), EndpointRepository(store, outbox))


Deliveries = Annotated[DeliveryService, Depends(delivery_service)]
EndpointId = Annotated[str, Path(max_length=200)]
DeliveryId = Annotated[str, Path(max_length=200)]
router = APIRouter(prefix=PREFIX, tags=["webhooks"])


@router.get(
    "/{endpoint_id}/deliveries", responses=problems(Forbidden, EndpointNotFound, InvalidInput)
)
async def list_deliveries(
    principal: CurrentPrincipal,
    deliveries: Deliveries,
    endpoint_id: EndpointId,
    delivery_status: Annotated[DeliveryStatus | None, Query(alias="status")] = None,
    event_type: Annotated[str | None, Query(alias="eventType", max_length=200)] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> PageOut[DeliveryOut]:
    """The endpoint's delivery log, newest first, each with every attempt (time, status
    code, duration, the first KiB of the answer) (ADMIN, PARTNER)."""
    items, next_cursor = await deliveries.log(
        principal,
        endpoint_id,
        status=delivery_status,
        event_type=event_type,
        limit=limit,
        cursor=cursor,
    )
    return PageOut(items=[DeliveryOut.of(d) for d in items], next_cursor=next_cursor)


@router.get(
    "/{endpoint_id}/deliveries/{delivery_id}",
    responses=problems(Forbidden, EndpointNotFound, DeliveryNotFound),
)
async def get_delivery(
    principal: CurrentPrincipal,
    deliveries: Deliveries,
    endpoint_id: EndpointId,
    delivery_id: DeliveryId,
) -> DeliveryOut:
    return DeliveryOut.of(await deliveries.get(principal, endpoint_id, delivery_id))


@router.post(
    "/{endpoint_id}/deliveries/{delivery_id}/redeliver",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problems(Forbidden, EndpointNotFound, DeliveryNotFound, EndpointDisabledError),
)
async def redeliver(
    principal: CurrentPrincipal,
    deliveries: Deliveries,
    endpoint_id: EndpointId,
    delivery_id: DeliveryId,
) -> DeliveryOut:
    """Send the delivery again now, with the same ``webhook-id``."""
    return DeliveryOut.of(await deliveries.redeliver(principal, endpoint_id, delivery_id))


@router.post(
    "/{endpoint_id}/recover",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problems(Forbidden, EndpointNotFound, EndpointDisabledError),
)
async def recover(
    principal: CurrentPrincipal, deliveries: Deliveries, endpoint_id: EndpointId, body: RecoverIn
) -> RecoverOut:
    """Resend every failed delivery made since ``since`` (after an outage)."""
    return RecoverOut(resent=await deliveries.recover(principal, endpoint_id, body.since))


@router.post(
    "/{endpoint_id}/ping",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problems(Forbidden, EndpointNotFound, EndpointDisabledError),
)
async def ping(
    principal: CurrentPrincipal, deliveries: Deliveries, endpoint_id: EndpointId
) -> DeliveryOut:
    """A test event (``gala.webhook.ping.v1``) to this endpoint, signed and retried like
    every delivery; follow it in the log."""
    return DeliveryOut.of(await deliveries.ping(principal, endpoint_id))
