"""Building blocks of every service's HTTP layer, so that all APIs look alike.

JSON is camelCase with ids as ``id``; requests refuse unknown fields (a typo must not be
silently ignored); lists answer ``{"items": [...], "nextCursor": ...}`` with keyset
cursors; the errors an endpoint can answer are declared from their exception classes.
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Generic, TypeVar

from fastapi import FastAPI, Query, Request
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from gala.errors import PROBLEM_JSON, GalaError, PayloadTooLarge, Unauthorized

MAX_PAGE = 200

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Items per page (1-200).")]
Cursor = Annotated[
    str | None, Query(max_length=2048, description="The `nextCursor` of the previous page.")
]


class RequestBody(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_alias=True, validate_by_name=False, extra="forbid"
    )


class ResponseBody(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, serialize_by_alias=True
    )


Item = TypeVar("Item", bound=BaseModel)


class PageOut(ResponseBody, Generic[Item]):
    items: list[Item]
    next_cursor: str | None = None


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An RFC 9457 problem: what went wrong, for people and for programs.",
    "properties": {
        "type": {"type": "string", "examples": ["urn:gala:problem:not-found"]},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
    },
    "required": ["type", "title", "status"],
    "additionalProperties": True,
}
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def problem_response_doc(description: str) -> dict[str, Any]:
    """An OpenAPI response answered as problem+json."""
    return {"description": description, "content": {PROBLEM_JSON: {"schema": PROBLEM_REF}}}


def openapi_with_problems(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """``app``'s OpenAPI document as it answers: FastAPI documents a validation failure
    (422) as its own JSON, while every Gala service answers problem+json; every problem
    response refers to one ``Problem`` schema."""

    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            for item in schema.get("paths", {}).values():
                for operation in item.values():
                    responses = operation.get("responses", {})
                    for status, response in responses.items():
                        if str(status) == "422" and PROBLEM_JSON not in response.get("content", {}):
                            responses[status] = problem_response_doc("The request is not valid")
                        elif PROBLEM_JSON in response.get("content", {}):
                            response["content"][PROBLEM_JSON] = {"schema": PROBLEM_REF}
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for unused in ("HTTPValidationError", "ValidationError"):
                components.pop(unused, None)
            components["Problem"] = PROBLEM_SCHEMA
            app.openapi_schema = schema
        return app.openapi_schema

    return document


def problems(*errors: type[GalaError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problems an endpoint can answer (401 always)."""
    answers: dict[int | str, dict[str, Any]] = {}
    every: tuple[type[GalaError], ...] = (Unauthorized, *errors)
    for error in every:
        entry = answers.setdefault(
            int(error.status), {"description": error.title, "content": {PROBLEM_JSON: {}}}
        )
        if error.title not in entry["description"]:
            entry["description"] += f"; {error.title}"
    return answers


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refusing (413) more than ``limit`` bytes without reading them."""
    return b"".join([chunk async for chunk in stream_body(request, limit)])


async def stream_body(request: Request, limit: int) -> AsyncIterator[bytes]:
    """The body chunk by chunk, refusing (413) more than ``limit`` bytes (by the declared
    length before reading anything, and by what actually arrives)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The body may not exceed {limit} bytes.", limit=limit)
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The body may not exceed {limit} bytes.", limit=limit)
        if chunk:
            yield chunk


def client_address(forwarded_for: str | None, peer: str | None, trusted_proxies: int) -> str:
    """The address the caller came from, as far as our own proxies can tell.

    Each proxy appends the address it received the request from, so the last
    ``trusted_proxies`` entries are facts and anything before them is the caller's claim.
    """
    hops = [hop.strip() for hop in (forwarded_for or "").split(",") if hop.strip()]
    if trusted_proxies > 0 and hops:
        return _normalized_address(hops[-min(trusted_proxies, len(hops))])
    return _normalized_address(peer or "unknown")


def _normalized_address(value: str) -> str:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return value[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)
