"""Sending one attempt: an HTTP POST that never reaches a refused address.

The connection pool's network backend resolves each host itself when it connects,
checks every address the name resolves to (loopback, link-local, private, multicast,
unspecified and other non-public addresses are refused unless private targets are
allowed) and connects to a checked address: what is checked is what is connected to,
so a name that resolves elsewhere later (DNS rebinding) is caught at delivery time.
TLS still verifies the certificate against the URL's host. Redirects are not followed
(a 3xx is a failed attempt); an attempt has one deadline from connect to last byte,
and keeps the first KiB of the answer.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import httpcore
import httpx

from partners.deliveries.domain import RESPONSE_BYTES, Attempt, retry_after
from partners.webhooks.domain import refused_address

USER_AGENT = "Gala-Webhooks/1"


class RefusedTarget(httpcore.ConnectError):
    """The host resolves to an address deliveries may not go to."""


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks and pins the address of every connection."""

    def __init__(self, allow_private: bool) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._allow_private = allow_private

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError as exc:
            raise httpcore.ConnectError(f"{host} does not resolve: {exc}") from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if not addresses:
            raise httpcore.ConnectError(f"{host} does not resolve")
        if not self._allow_private:
            for address in addresses:
                why = refused_address(address)
                if why is not None:
                    raise RefusedTarget(f"{host} resolves to {address}, which {why}: refused")
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("deliveries never use unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def guarded_client(*, allow_private: bool, connections: int) -> httpx.AsyncClient:
    """An HTTP client whose every connection goes through :class:`GuardedBackend`."""
    transport = httpx.AsyncHTTPTransport()
    # The transport's own pool, with the guarded backend (httpx builds it internally).
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=ssl.create_default_context(),
        max_connections=connections,
        max_keepalive_connections=connections,
        keepalive_expiry=30.0,
        network_backend=GuardedBackend(allow_private),
    )
    return httpx.AsyncClient(transport=transport, follow_redirects=False, trust_env=False)


class Sender:
    def __init__(self, client: httpx.AsyncClient, timeout_seconds: float) -> None:
        self._client = client
        self._timeout = timeout_seconds

    async def post(
        self, url: str, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> Attempt:
        started = time.monotonic()

        def elapsed() -> int:
            return int((time.monotonic() - started) * 1000)

        try:
            async with asyncio.timeout(self._timeout):
                async with self._client.stream(
                    "POST",
                    url,
                    content=body,
                    headers={"user-agent": USER_AGENT, **headers},
                    timeout=self._timeout,
                ) as response:
                    head = await _first_bytes(response, RESPONSE_BYTES)
        except TimeoutError:
            return Attempt(now, elapsed(), error=f"No answer within {self._timeout:g} s.")
        except httpx.TimeoutException:
            return Attempt(now, elapsed(), error=f"No answer within {self._timeout:g} s.")
        except httpx.HTTPError as exc:
            return Attempt(now, elapsed(), error=f"{type(exc).__name__}: {exc}"[:500])
        return Attempt(
            now,
            elapsed(),
            status_code=response.status_code,
            response=head.decode("utf-8", "replace"),
            retry_after=retry_after(response.headers.get("retry-after"), now),
        )

    async def aclose(self) -> None:
        await self._client.aclose()


async def _first_bytes(response: httpx.Response, limit: int) -> bytes:
    kept = b""
    async for chunk in response.aiter_bytes():
        kept += chunk[: limit - len(kept)]
        if len(kept) >= limit:
            break
    return kept
