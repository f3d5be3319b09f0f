"""What every HTTP request gets before a route sees it.

A server span that continues the caller's W3C trace (``traceparent``) or starts one, and
the request and correlation ids (``X-Request-ID``, ``X-Correlation-ID``, or new ones)
bound for logs and for the events the request causes; the request id is echoed back.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gala.context import bound, new_id, safe_id
from gala.tracing import request_span

_READ = frozenset({b"x-request-id", b"x-correlation-id", b"traceparent"})


class RequestMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        wanted: dict[bytes, str] = {}
        for key, value in scope["headers"]:  # only the three it reads, not a copy of all
            if (name := key.lower()) in _READ:
                wanted[name] = value.decode("latin-1")
        request = safe_id(wanted.get(b"x-request-id")) or new_id()
        correlation = safe_id(wanted.get(b"x-correlation-id")) or request
        name = f"{scope.get('method', 'WS')} {scope['path']}"
        with (
            request_span(name, wanted.get(b"traceparent")) as span,
            bound(request=request, correlation=correlation),
        ):
            if span.is_recording():
                span.set_attribute("url.path", scope["path"])

            async def send_with_id(message: Message) -> None:
                if message["type"] == "http.response.start":
                    if span.is_recording():
                        span.set_attribute("http.response.status_code", message["status"])
                    message["headers"] = [
                        *message.get("headers", []),
                        (b"x-request-id", request.encode()),
                    ]
                await send(message)

            await self.app(scope, receive, send_with_id)
