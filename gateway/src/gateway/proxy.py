"""Forwards HTTP requests to the service that owns them.

One pooled client per upstream, with connect and read timeouts. Idempotent methods are
retried when the connection fails before a response (never a POST or PATCH). A service
that cannot be reached answers 503, one that does not answer in time 504, both as
problem+json naming the service; the upstream's own answers (4xx included) pass through
unchanged, streamed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping

import httpx
from fastapi import Request
from starlette.background import BackgroundTask
from starlette.responses import Response, StreamingResponse

from gala.context import request_id
from gala.errors import GalaError
from gala.identity import IDENTITY_HEADER
from gala.tracing import current_traceparent

log = logging.getLogger(__name__)

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
# Never forwarded from the caller: the gateway alone speaks for the caller's identity.
STRIPPED_REQUEST_HEADERS = HOP_BY_HOP | {"authorization", IDENTITY_HEADER.lower(), "cookie"}
RETRY_BACKOFF_SECONDS = 0.1


class UpstreamUnavailable(GalaError):
    status = 503
    code = "upstream-unavailable"
    title = "The service is unavailable"


class UpstreamTimeout(GalaError):
    status = 504
    code = "upstream-timeout"
    title = "The service did not answer in time"


class PayloadTooLarge(GalaError):
    status = 413
    code = "payload-too-large"
    title = "The request body is too large"


class Upstreams:
    """A pooled HTTP client per service."""

    def __init__(
        self,
        urls: Mapping[str, str],
        *,
        connect_timeout: float,
        timeout: float,
        pool_size: int,
        retries: int,
    ) -> None:
        self.clients = {
            service: httpx.AsyncClient(
                base_url=url,
                timeout=httpx.Timeout(timeout, connect=connect_timeout),
                limits=httpx.Limits(max_connections=pool_size, max_keepalive_connections=pool_size),
            )
            for service, url in urls.items()
        }
        self.retries = retries

    async def close(self) -> None:
        await asyncio.gather(*(client.aclose() for client in self.clients.values()))

    async def forward(
        self,
        service: str,
        request: Request,
        *,
        target: bytes,
        identity: str | None,
        body: bytes | AsyncIterator[bytes],
    ) -> Response:
        """Forward to ``service``; ``target`` is the raw path and query, as checked by
        :func:`gateway.paths.forwardable_target` (never re-encoded or normalised)."""
        client = self.clients[service]
        upstream_request = client.build_request(
            request.method,
            client.base_url.copy_with(raw_path=target),
            headers=forwarded_headers(request, identity),
            content=body,
        )
        attempts = 1 + (
            self.retries if request.method in IDEMPOTENT and isinstance(body, bytes) else 0
        )
        for attempt in range(1, attempts + 1):
            try:
                upstream = await client.send(upstream_request, stream=True)
                break
            except (httpx.ConnectError, httpx.RemoteProtocolError) as exc:
                if attempt < attempts:
                    await asyncio.sleep(RETRY_BACKOFF_SECONDS * attempt)
                    continue
                raise UpstreamUnavailable(
                    f"The {service} service cannot be reached.", service=service
                ) from exc
            except httpx.TimeoutException as exc:
                raise UpstreamTimeout(
                    f"The {service} service did not answer in time.", service=service
                ) from exc
        headers = {
            name: value
            for name, value in upstream.headers.multi_items()
            if name.lower() not in HOP_BY_HOP and name.lower() != "x-request-id"
        }
        return StreamingResponse(
            upstream.aiter_raw(),
            status_code=upstream.status_code,
            headers=headers,
            background=BackgroundTask(upstream.aclose),
        )


def forwarded_headers(request: Request, identity: str | None) -> dict[str, str]:
    headers = {
        name: value
        for name, value in request.headers.items()
        if name.lower() not in STRIPPED_REQUEST_HEADERS
    }
    if identity:
        headers[IDENTITY_HEADER] = identity
    if rid := request_id.get():
        headers["X-Request-ID"] = rid
    if traceparent := current_traceparent():
        headers["traceparent"] = traceparent
    client = request.client.host if request.client else ""
    prior = request.headers.get("x-forwarded-for")
    headers["X-Forwarded-For"] = f"{prior}, {client}" if prior else client
    headers["X-Forwarded-Proto"] = request.url.scheme
    headers["X-Forwarded-Host"] = request.headers.get("host", "")
    return headers


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refusing (413) more than ``limit`` bytes before reading them."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The body may not exceed {limit} bytes.", limit=limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The body may not exceed {limit} bytes.", limit=limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def limited_stream(request: Request, limit: int) -> AsyncIterator[bytes]:
    """The body as it arrives, cut off with 413 past ``limit`` bytes (uploads)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The upload may not exceed {limit} bytes.", limit=limit)

    async def chunks() -> AsyncIterator[bytes]:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"The upload may not exceed {limit} bytes.", limit=limit)
            yield chunk

    return chunks()
