"""The published event contract over HTTP, public like the API's own documentation.

``GET /api/v1/events/asyncapi.json``: the committed AsyncAPI 3.0 document, byte for byte
(generated from the services' declarations by ``make contracts``; this service never
imports another service). ``GET /api/v1/events/docs``: the same document as a page for
people, rendered here, with a Content-Security-Policy of its own that allows its one
inline style sheet and nothing else (the gateway keeps an upstream's policy).
"""

from __future__ import annotations

import hashlib
from functools import cache

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from gala.contracts.published import asyncapi_bytes, asyncapi_document
from partners.contract.domain import content_security_policy, render

router = APIRouter(prefix="/api/v1/events", tags=["event contract"])

ASYNCAPI_MEDIA_TYPE = "application/json"
CACHE_CONTROL = "public, max-age=300"


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


@cache
def _page() -> bytes:
    return render(asyncapi_document()).encode()


@router.get(
    "/asyncapi.json",
    response_class=Response,
    responses={
        200: {
            "description": "The AsyncAPI 3.0 document of every published event.",
            "content": {ASYNCAPI_MEDIA_TYPE: {"schema": {"type": "object"}}},
        }
    },
)
async def asyncapi() -> Response:
    """The AsyncAPI 3.0 document of Gala's events: channels (topics), messages (one per
    event type and version, with headers, payload schema and example), operations (who
    sends, who receives), Kafka bindings and the versioning promise."""
    body = asyncapi_bytes()
    return Response(
        body,
        media_type=ASYNCAPI_MEDIA_TYPE,
        headers={"Cache-Control": CACHE_CONTROL, "ETag": _etag(body)},
    )


@router.get(
    "/docs",
    response_class=HTMLResponse,
    responses={
        200: {
            "description": "The event contract as a page for people.",
            "content": {"text/html": {"schema": {"type": "string"}}},
        }
    },
)
async def docs() -> HTMLResponse:
    """The event contract for people: every channel and every event type with its
    description, key, headers, payload fields and an example."""
    body = _page()
    return HTMLResponse(
        body,
        headers={
            "Cache-Control": CACHE_CONTROL,
            "ETag": _etag(body),
            "Content-Security-Policy": content_security_policy(),
        },
    )
