"""What every HTTP request gets before a route sees it.

A server span that continues the caller's W3C trace (``traceparent``) or starts one, and
the request and correlation ids (``X-Request-ID``, ``X-Correlation-ID``, or new ones)
bound for logs and for the events the request causes; the request id is echoed back.
"""

from __future__ import annotations

from opentelemetry import trace
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gala.context import bound, new_id, safe_id
from gala.tracing import context_from_traceparent, tracer


class RequestMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        request = safe_id(headers.get("x-request-id")) or new_id()
        correlation = safe_id(headers.get("x-correlation-id")) or request
        parent = context_from_traceparent(headers.get("traceparent"))
        name = f"{scope.get('method', 'WS')} {scope['path']}"
        with (
            tracer().start_as_current_span(
                name, context=parent, kind=trace.SpanKind.SERVER
            ) as span,
            bound(request=request, correlation=correlation),
        ):
            span.set_attribute("url.path", scope["path"])

            async def send_with_id(message: Message) -> None:
                if message["type"] == "http.response.start":
                    span.set_attribute("http.response.status_code", message["status"])
                    message["headers"] = [
                        *message.get("headers", []),
                        (b"x-request-id", request.encode()),
                    ]
                await send(message)

            await self.app(scope, receive, send_with_id)
