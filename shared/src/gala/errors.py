"""RFC 9457 problem details for every error a service answers.

Domain modules raise subclasses of :class:`GalaError` (each service keeps its own base
class deriving from it); the handlers installed by :func:`install_problem_handlers`
turn them, validation failures and unexpected crashes into ``application/problem+json``.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:gala:problem:"
RESERVED_MEMBERS = frozenset({"type", "title", "status", "detail", "instance", "code"})
"""Members every problem has; an extension by one of these names would clobber it."""

log = logging.getLogger(__name__)


class GalaError(Exception):
    """An error with an HTTP status and a stable problem type."""

    status: ClassVar[int] = HTTPStatus.BAD_REQUEST
    code: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str | None = None, **extensions: Any) -> None:
        reserved = RESERVED_MEMBERS & extensions.keys()
        if reserved:  # a programming error: caught by the first test that raises it
            raise TypeError(f"problem extensions cannot be named {sorted(reserved)}")
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extensions = extensions

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        return problem(self.status, self.code, self.title, self.detail, instance, **self.extensions)

    def response_headers(self) -> dict[str, str]:
        """HTTP headers the answer needs besides the problem body."""
        return {}


class InvalidInput(GalaError):
    status = HTTPStatus.UNPROCESSABLE_ENTITY
    code = "invalid-input"
    title = "The request is not valid"


class Unauthorized(GalaError):
    status = HTTPStatus.UNAUTHORIZED
    code = "unauthorized"
    title = "Authentication required"

    def response_headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class Forbidden(GalaError):
    status = HTTPStatus.FORBIDDEN
    code = "forbidden"
    title = "Not allowed"


class NotFound(GalaError):
    status = HTTPStatus.NOT_FOUND
    code = "not-found"
    title = "Not found"


class Conflict(GalaError):
    status = HTTPStatus.CONFLICT
    code = "conflict"
    title = "Conflict with the current state"


class ServiceUnavailable(GalaError):
    status = HTTPStatus.SERVICE_UNAVAILABLE
    code = "unavailable"
    title = "A dependency is unavailable"


class PayloadTooLarge(GalaError):
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    code = "payload-too-large"
    title = "The request body is too large"


class UnsupportedMediaType(GalaError):
    status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    code = "unsupported-media-type"
    title = "The body's media type is not accepted"


def problem(
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    instance: str | None = None,
    **extensions: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {"type": PROBLEM_TYPE_PREFIX + code, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update(extensions)
    return body


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=body["status"], media_type=PROBLEM_JSON, headers=headers)


def _code_for_status(status: int) -> tuple[str, str]:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return phrase.lower().replace(" ", "-").replace("'", ""), phrase


async def _on_gala_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, GalaError)
    return problem_response(exc.to_problem(request.url.path), exc.response_headers() or None)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "location": [str(part) for part in err.get("loc", ())],
            "message": err.get("msg", ""),
            "type": err.get("type", ""),
        }
        for err in exc.errors()
    ]
    return problem_response(
        problem(
            HTTPStatus.UNPROCESSABLE_ENTITY,
            InvalidInput.code,
            InvalidInput.title,
            f"{len(errors)} field(s) failed validation",
            request.url.path,
            errors=errors,
        )
    )


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code, title = _code_for_status(exc.status_code)
    detail = exc.detail if isinstance(exc.detail, str) else title
    return problem_response(
        problem(exc.status_code, code, title, detail, request.url.path),
        dict(exc.headers) if exc.headers else None,
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", extra={"path": request.url.path})
    return problem_response(
        problem(
            HTTPStatus.INTERNAL_SERVER_ERROR,
            "internal-error",
            "Internal server error",
            "The error was logged.",
            request.url.path,
        )
    )


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(GalaError, _on_gala_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
