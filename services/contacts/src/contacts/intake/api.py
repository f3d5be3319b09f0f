"""HTTP entry points of lead intake: thin translations to the use cases.

``admin_router`` (under ``/api/v1/contacts``, so the gateway asks for a login) lets a
venue's ADMIN manage its website key and its lead-ads pages. ``public_router``
(``/api/v1/intake``, public through the gateway) takes website forms, authenticated by
the venue's key, and Meta's webhooks, authenticated by their signature; neither has an
identity header, so neither asks for a principal.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse
from pydantic import ValidationError

from contacts.intake.domain import (
    GraphUnavailable,
    HandshakeRefused,
    InvalidPageIds,
    InvalidPageToken,
    InvalidSubmission,
    InvalidWebhook,
    PageTaken,
    SignatureRejected,
    TooManySubmissions,
    UnknownIntakeKey,
    is_bot,
    parse_submission,
)
from contacts.intake.graph import GraphClient
from contacts.intake.repository import IntakeRepository, MetaLeadRepository
from contacts.intake.schemas import (
    PUBLIC_PREFIX,
    WEBSITE_FORM_BODY,
    AcceptedOut,
    IntakeKeyOut,
    MetaPagesIn,
    MetaPagesOut,
    ReceivedOut,
    WebsiteFormIn,
)
from contacts.intake.service import IntakeService, graph_client
from contacts.leads.repository import ContactRepository
from contacts.settings import ContactsSettings, contacts_settings
from contacts.timeline.repository import TimelineRepository
from gala.api import client_address, problems, read_body
from gala.app import OutboxDep, StoreDep, get_runtime
from gala.errors import Conflict, Forbidden, InvalidInput, PayloadTooLarge
from gala.identity import CurrentPrincipal

ADMIN_PREFIX = "/api/v1/contacts"

log = logging.getLogger(__name__)


async def get_settings(request: Request) -> ContactsSettings:
    return contacts_settings(get_runtime(request).settings)


SettingsDep = Annotated[ContactsSettings, Depends(get_settings)]


async def get_intake_service(
    store: StoreDep, outbox: OutboxDep, settings: SettingsDep
) -> IntakeService:
    return IntakeService(
        IntakeRepository(store),
        MetaLeadRepository(store),
        ContactRepository(store, outbox),
        TimelineRepository(store),
        settings,
    )


Intake = Annotated[IntakeService, Depends(get_intake_service)]


async def get_graph(settings: SettingsDep) -> AsyncIterator[GraphClient]:
    async with graph_client(settings) as graph:
        yield graph


Graph = Annotated[GraphClient, Depends(get_graph)]


# --- a venue's ADMIN --------------------------------------------------------------------

admin_router = APIRouter(prefix=ADMIN_PREFIX, tags=["intake"])


@admin_router.get("/intake-key", responses=problems(Forbidden))
async def get_intake_key(principal: CurrentPrincipal, intake: Intake) -> IntakeKeyOut:
    """The venue's public website key (made on first use), for its forms (ADMIN)."""
    return IntakeKeyOut.of(await intake.intake_key(principal))


@admin_router.post("/intake-key/rotate", responses=problems(Forbidden))
async def rotate_intake_key(principal: CurrentPrincipal, intake: Intake) -> IntakeKeyOut:
    """A new website key; the old one stops working at once (ADMIN)."""
    return IntakeKeyOut.of(await intake.rotate_key(principal))


@admin_router.get("/intake-meta-pages", responses=problems(Forbidden))
async def get_meta_pages(principal: CurrentPrincipal, intake: Intake) -> MetaPagesOut:
    """The Facebook/Instagram pages whose lead ads come to this venue (ADMIN)."""
    return MetaPagesOut(page_ids=await intake.meta_pages(principal))


@admin_router.put(
    "/intake-meta-pages",
    responses=problems(Forbidden, PageTaken, InvalidPageIds, InvalidPageToken, GraphUnavailable),
)
async def put_meta_pages(
    principal: CurrentPrincipal, intake: Intake, graph: Graph, body: MetaPagesIn
) -> MetaPagesOut:
    """Set the venue's lead-ads pages, each with its page access token (ADMIN).

    Each token must be one the Graph API answers as that page's (else 422); a page
    another venue holds is a 409 unless that venue's token no longer controls it; the
    Graph API out of reach is a 503. None of these changes anything.
    """
    pages = [page.grant() for page in body.pages]
    return MetaPagesOut(page_ids=await intake.map_meta_pages(principal, pages, graph))


# --- public -------------------------------------------------------------------------------

public_router = APIRouter(prefix=PUBLIC_PREFIX, tags=["intake"])


@public_router.get(
    "/meta",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}}}, **problems(HandshakeRefused, InvalidInput)},
)
async def meta_subscription(
    intake: Intake,
    challenge: Annotated[str, Query(alias="hub.challenge", min_length=1, max_length=256)],
    mode: Annotated[str | None, Query(alias="hub.mode", max_length=32)] = None,
    verify_token: Annotated[str | None, Query(alias="hub.verify_token", max_length=256)] = None,
) -> PlainTextResponse:
    """Meta's subscription handshake: the challenge back if the verify token is ours."""
    return PlainTextResponse(intake.subscription_challenge(mode, verify_token, challenge))


@public_router.post("/meta", responses=problems(SignatureRejected, InvalidWebhook, PayloadTooLarge))
async def meta_webhook(request: Request, intake: Intake, settings: SettingsDep) -> ReceivedOut:
    """Meta's lead-ads webhook, signed with the app secret (``X-Hub-Signature-256``)."""
    body = await read_body(request, settings.meta_max_body_bytes)
    await intake.receive_meta_webhook(body, request.headers.get("x-hub-signature-256"))
    return ReceivedOut()


@public_router.post(
    "/{venue_key}",
    status_code=status.HTTP_202_ACCEPTED,
    openapi_extra=WEBSITE_FORM_BODY,
    responses=problems(
        UnknownIntakeKey,
        TooManySubmissions,
        InvalidSubmission,
        Conflict,
    ),
)
async def submit_website_form(
    request: Request, venue_key: str, intake: Intake, settings: SettingsDep
) -> AcceptedOut:
    """A venue's website form (JSON or form-encoded): a new email makes a contact; a known
    one keeps its details and gets a new inquiry on its timeline, which raises its heat."""
    address = client_address(
        request.headers.get("x-forwarded-for"),
        request.client.host if request.client else None,
        settings.trusted_proxies,
    )
    venue_id = await intake.open_form(venue_key, address)
    body = await read_body(request, settings.intake_max_body_bytes)
    fields = parse_submission(request.headers.get("content-type"), body)
    if is_bot(fields):
        log.info("website form: honeypot filled, nothing kept", extra={"venue_id": venue_id})
        return AcceptedOut()
    try:
        form = WebsiteFormIn.model_validate(fields)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in errors]
        ) from None
    await intake.accept_website_lead(venue_id, form.to_lead())
    return AcceptedOut()
