"""Forwards HTTP requests to the service that owns them.

One pooled aiohttp session per upstream (its client is several times cheaper per request
than httpx's: ``gateway/benchmarks/http_path.py`` measures both), with connect and read
timeouts. Idempotent methods are retried when the connection fails before a response
(never a POST or PATCH). A service that cannot be reached answers 503, one that does not
answer in time 504, both as problem+json naming the service; the upstream's own answers
(4xx included) pass through unchanged: a small answer of known length is read whole and
sent as one response, anything else (a big or unsized answer, a download) is streamed.

The httpx clients (:attr:`Upstreams.clients`) stay for the gateway's own look-ups (the
user directory, partner keys, the merged OpenAPI), which are cached and rare.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping

import aiohttp
import httpx
from fastapi import Request
from starlette.background import BackgroundTask
from starlette.responses import Response, StreamingResponse
from yarl import URL

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
_NOT_RETURNED = frozenset(name.encode("latin-1") for name in HOP_BY_HOP | {"x-request-id"})
_IDENTITY = IDENTITY_HEADER.lower()
_SET_HERE = frozenset({"x-forwarded-proto", "x-forwarded-host"})
RETRY_BACKOFF_SECONDS = 0.1
WHOLE_BODY_BYTES = 256 * 1024
"""An upstream answer of at most this declared length is read whole and sent at once."""
STREAM_CHUNK_BYTES = 64 * 1024
BODILESS_STATUSES = frozenset({204, 304})


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
    """A pooled aiohttp session per service (forwarding), and an httpx client per service
    (the gateway's own look-ups)."""

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
        self.urls = {service: url.rstrip("/") for service, url in urls.items()}
        self.sessions = {
            service: aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=pool_size, limit_per_host=pool_size),
                # connect: a pooled connection or a new one within the read timeout, a new
                # socket within the connect timeout; then each read within the read timeout
                timeout=aiohttp.ClientTimeout(
                    total=None, connect=timeout, sock_connect=connect_timeout, sock_read=timeout
                ),
                auto_decompress=False,  # the caller gets the bytes the service sent
                cookie_jar=aiohttp.DummyCookieJar(),
                skip_auto_headers=("User-Agent",),
            )
            for service in urls
        }
        self.retries = retries

    async def close(self) -> None:
        await asyncio.gather(
            *(client.aclose() for client in self.clients.values()),
            *(session.close() for session in self.sessions.values()),
        )

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
        session = self.sessions[service]
        url = URL(self.urls[service] + target.decode("ascii"), encoded=True)
        headers = forwarded_headers(request, identity)
        method = request.method
        attempts = 1 + (self.retries if method in IDEMPOTENT and isinstance(body, bytes) else 0)
        for attempt in range(1, attempts + 1):
            try:
                upstream = await session.request(
                    method,
                    url,
                    headers=headers,
                    data=body if body else None,
                    allow_redirects=False,
                    compress=None,
                )
                break
            except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
                raise UpstreamTimeout(
                    f"The {service} service did not answer in time.", service=service
                ) from exc
            except (aiohttp.ClientConnectorError, aiohttp.ServerDisconnectedError) as exc:
                if attempt < attempts:  # an idempotent method: sending it again is safe
                    await asyncio.sleep(RETRY_BACKOFF_SECONDS * attempt)
                    continue
                raise UpstreamUnavailable(
                    f"The {service} service cannot be reached.", service=service
                ) from exc
            except aiohttp.ClientError as exc:
                raise UpstreamUnavailable(
                    f"The {service} service cannot be reached.", service=service
                ) from exc
        returned = [
            (name, value)
            for name, value in upstream.raw_headers
            if name.lower() not in _NOT_RETURNED
        ]
        length = upstream.content_length
        if method == "HEAD" or (length is not None and length <= WHOLE_BODY_BYTES):
            try:
                content = await upstream.read()
            except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
                raise UpstreamTimeout(
                    f"The {service} service did not answer in time.", service=service
                ) from exc
            except aiohttp.ClientError as exc:
                raise UpstreamUnavailable(
                    f"The {service} service broke off its answer.", service=service
                ) from exc
            finally:
                upstream.release()
            response = Response(content, status_code=upstream.status)
            if upstream.status in BODILESS_STATUSES:
                length = None
            elif method != "HEAD":  # a HEAD answer keeps the length a GET would have
                length = len(content)
            if length is not None:
                returned.append((b"content-length", str(length).encode("latin-1")))
            response.raw_headers = returned
            return response
        streamed = StreamingResponse(
            upstream.content.iter_chunked(STREAM_CHUNK_BYTES),
            status_code=upstream.status,
            background=BackgroundTask(_release, upstream),
        )
        streamed.raw_headers = returned
        return streamed


async def _release(upstream: aiohttp.ClientResponse) -> None:
    upstream.release()


def forwarded_headers(request: Request, identity: str | None) -> dict[str, str]:
    """The caller's headers (from the raw ASGI pairs: no decoded copy of the whole set)
    without the hop-by-hop and identity ones, and the gateway's own."""
    scope = request.scope
    headers: dict[str, str] = {}
    prior = host = ""
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1")
        if name in STRIPPED_REQUEST_HEADERS:
            if name == "host":
                host = raw_value.decode("latin-1")
        elif name == "x-forwarded-for":
            prior = raw_value.decode("latin-1")
        elif name not in _SET_HERE:
            headers[name] = raw_value.decode("latin-1")
    # lower-case names, as the caller's are: each replaces the caller's own, if any
    if identity:
        headers[_IDENTITY] = identity
    if rid := request_id.get():
        headers["x-request-id"] = rid
    if traceparent := current_traceparent():
        headers["traceparent"] = traceparent
    client = scope.get("client")
    address = client[0] if client else ""
    headers["x-forwarded-for"] = f"{prior}, {address}" if prior else address
    headers["x-forwarded-proto"] = scope.get("scheme", "http")
    headers["x-forwarded-host"] = host
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
