"""HTTP entry points for webhook endpoints: thin translations to the use cases."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response, status

from gala.api import Cursor, Limit, PageOut, problems
from gala.app import OutboxDep, RuntimeDep, StoreDep
from gala.errors import Forbidden, InvalidInput
from gala.identity import CurrentPrincipal
from partners.deliveries.repository import DeliveryRepository
from partners.settings import partners_settings
from partners.webhooks.domain import (
    EndpointChangedConcurrently,
    EndpointNotFound,
    InvalidEndpoint,
    RefusedUrl,
    UrlPolicy,
)
from partners.webhooks.repository import EndpointRepository
from partners.webhooks.schemas import (
    CreateEndpointIn,
    EndpointOut,
    EndpointWithSecretOut,
    UpdateEndpointIn,
)
from partners.webhooks.service import EndpointService

PREFIX = "/api/v1/partners/webhooks"


async def endpoint_service(
    store: StoreDep, outbox: OutboxDep, runtime: RuntimeDep
) -> EndpointService:
    settings = partners_settings(runtime.settings)
    return EndpointService(
        EndpointRepository(store, outbox),
        DeliveryRepository(store),
        UrlPolicy(settings.webhook_http_allowed, settings.webhook_allow_private_targets),
        settings.webhook_secret_overlap,
    )


Endpoints = Annotated[EndpointService, Depends(endpoint_service)]
EndpointId = Annotated[str, Path(max_length=200)]
router = APIRouter(prefix=PREFIX, tags=["webhooks"])
CHANGE_PROBLEMS = (Forbidden, EndpointNotFound, EndpointChangedConcurrently)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=problems(Forbidden, InvalidEndpoint, RefusedUrl),
)
async def create_endpoint(
    principal: CurrentPrincipal, endpoints: Endpoints, body: CreateEndpointIn, response: Response
) -> EndpointWithSecretOut:
    """A webhook endpoint of the caller's venue (ADMIN, PARTNER), with its signing secret
    (shown this once). It receives the venue's events whose type matches a filter."""
    endpoint, secret = await endpoints.create(
        principal, body.url, body.event_types, body.description
    )
    response.headers["Location"] = f"{PREFIX}/{endpoint.id}"
    return EndpointWithSecretOut.with_secret(endpoint, secret)


@router.get("", responses=problems(Forbidden, InvalidInput))
async def list_endpoints(
    principal: CurrentPrincipal, endpoints: Endpoints, limit: Limit = 50, cursor: Cursor = None
) -> PageOut[EndpointOut]:
    """The venue's webhook endpoints, oldest first (ADMIN, PARTNER)."""
    items, next_cursor = await endpoints.page(principal, limit, cursor)
    return PageOut(items=[EndpointOut.of(e) for e in items], next_cursor=next_cursor)


@router.get("/{endpoint_id}", responses=problems(Forbidden, EndpointNotFound))
async def get_endpoint(
    principal: CurrentPrincipal, endpoints: Endpoints, endpoint_id: EndpointId
) -> EndpointOut:
    return EndpointOut.of(await endpoints.get(principal, endpoint_id))


@router.patch("/{endpoint_id}", responses=problems(*CHANGE_PROBLEMS, InvalidEndpoint, RefusedUrl))
async def update_endpoint(
    principal: CurrentPrincipal,
    endpoints: Endpoints,
    endpoint_id: EndpointId,
    body: UpdateEndpointIn,
) -> EndpointOut:
    """Change the URL, the filters or the description (what is left out stays)."""
    endpoint = await endpoints.update(
        principal,
        endpoint_id,
        url=body.url,
        event_types=body.event_types,
        description=body.description,
    )
    return EndpointOut.of(endpoint)


@router.post("/{endpoint_id}/disable", responses=problems(*CHANGE_PROBLEMS))
async def disable_endpoint(
    principal: CurrentPrincipal, endpoints: Endpoints, endpoint_id: EndpointId
) -> EndpointOut:
    """No more deliveries; those waiting fail (``recover`` resends them once enabled)."""
    return EndpointOut.of(await endpoints.disable(principal, endpoint_id))


@router.post("/{endpoint_id}/enable", responses=problems(*CHANGE_PROBLEMS))
async def enable_endpoint(
    principal: CurrentPrincipal, endpoints: Endpoints, endpoint_id: EndpointId
) -> EndpointOut:
    return EndpointOut.of(await endpoints.enable(principal, endpoint_id))


@router.post("/{endpoint_id}/secret/rotate", responses=problems(*CHANGE_PROBLEMS))
async def rotate_secret(
    principal: CurrentPrincipal, endpoints: Endpoints, endpoint_id: EndpointId
) -> EndpointWithSecretOut:
    """A new signing secret (shown this once); the previous one keeps signing beside it
    for 24 h (both signatures in ``webhook-signature``)."""
    endpoint, secret = await endpoints.rotate_secret(principal, endpoint_id)
    return EndpointWithSecretOut.with_secret(endpoint, secret)


@router.delete(
    "/{endpoint_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(Forbidden, EndpointNotFound),
)
async def delete_endpoint(
    principal: CurrentPrincipal, endpoints: Endpoints, endpoint_id: EndpointId
) -> Response:
    """The endpoint and its delivery log."""
    await endpoints.delete(principal, endpoint_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
