"""Which request paths the gateway forwards, and exactly as what.

The gateway forwards the path as the caller sent it (the raw, still percent-encoded
bytes), never a decoded copy that an HTTP client would re-encode or normalise: what a
service routes on is then exactly what the gateway routed on. Paths that could mean one
thing here and another upstream are refused with 400 before any routing: dot segments
(``..`` or ``.``, plain or percent-encoded), encoded separators (``%2F``, ``%5C``),
backslashes, and control characters (raw or encoded).
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Receive, Scope, Send

from gala.errors import GalaError, problem_response

_CONTROL = re.compile(rb"[\x00-\x1f\x7f]")
_ENCODED_SEPARATOR = re.compile(rb"%(2f|5c)", re.IGNORECASE)
_BAD_ESCAPE = re.compile(rb"%(?![0-9a-fA-F]{2})")


class InvalidPath(GalaError):
    status = 400
    code = "invalid-path"
    title = "The request path is not acceptable"


def forwardable_path(raw_path: bytes) -> str:
    """``raw_path`` as the text to forward, or :class:`InvalidPath`."""
    if not raw_path.isascii() or b" " in raw_path:
        raise InvalidPath("The path holds raw non-ASCII bytes or spaces: percent-encode them.")
    if _CONTROL.search(raw_path) or b"\\" in raw_path:
        raise InvalidPath("The path holds a control character or a backslash.")
    if _BAD_ESCAPE.search(raw_path):
        raise InvalidPath("The path holds a malformed percent escape.")
    if _ENCODED_SEPARATOR.search(raw_path):
        raise InvalidPath("The path holds an encoded '/' or '\\'.")
    decoded = unquote_to_bytes(raw_path)
    if _CONTROL.search(decoded):
        raise InvalidPath("The path holds an encoded control character.")
    if any(segment in (b".", b"..") for segment in decoded.split(b"/")):
        raise InvalidPath("The path holds a '.' or '..' segment.")
    try:
        decoded.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidPath("The path is not UTF-8 once decoded.") from None
    return raw_path.decode("ascii")


CHECKED_TARGET = "gala.checked_target"
"""Where :class:`PathGuardMiddleware` leaves the target it checked (the proxy reuses it)."""


def checked_target(scope: Scope) -> bytes:
    """The target :class:`PathGuardMiddleware` checked for this request, else checked now."""
    target: bytes | None = scope.get(CHECKED_TARGET)
    return target if target is not None else forwardable_target(scope)


def forwardable_target(scope: Scope) -> bytes:
    """The request target to forward: the raw path and the raw query, both checked."""
    raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
    path = forwardable_path(raw_path.split(b"?", 1)[0])
    query: bytes = scope.get("query_string", b"")
    if not query.isascii() or _CONTROL.search(query) or b" " in query:
        raise InvalidPath("The query holds raw non-ASCII bytes, spaces or control characters.")
    return path.encode("ascii") + (b"?" + query if query else b"")


class PathGuardMiddleware:
    """Refuses every unacceptable request target before routing: 400 problem+json for
    HTTP, a socket closed with 4400 for a WebSocket (routing itself would answer 404 for a
    path holding a line break, or forward what it decoded)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        try:
            scope[CHECKED_TARGET] = forwardable_target(scope)
        except InvalidPath as exc:
            if scope["type"] == "http":
                body = exc.to_problem(None)
                await problem_response(body)(scope, receive, send)
            else:
                await receive()  # websocket.connect
                await send({"type": "websocket.accept"})
                await send({"type": "websocket.close", "code": 4400, "reason": exc.detail[:120]})
            return
        await self.app(scope, receive, send)
