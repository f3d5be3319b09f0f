"""Proxies the chat WebSocket to the chat service, authenticated like any other route.

Browsers cannot set headers on a socket, so the session token comes either as a
subprotocol ``gala.bearer.<token>`` (offered beside the application's own subprotocol)
or as the ``access_token`` query parameter. The socket is accepted only once the caller
is known and the upstream socket is open. A refused socket is accepted and closed at
once with 4401 (unauthorized), 4403 (forbidden) or 1013 (try again later), so that a
browser can read why (a refused handshake only shows as a failed connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from urllib.parse import urlencode

from fastapi import WebSocket
from starlette.websockets import WebSocketDisconnect
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from gala.identity import IDENTITY_HEADER

log = logging.getLogger(__name__)

TOKEN_PROTOCOL_PREFIX = "gala.bearer."
TOKEN_QUERY_PARAMETER = "access_token"
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TRY_AGAIN = 1013
CLOSE_BAD_REQUEST = 4400


def socket_token(websocket: WebSocket) -> str | None:
    for protocol in websocket.scope.get("subprotocols", []):
        if protocol.startswith(TOKEN_PROTOCOL_PREFIX):
            return str(protocol[len(TOKEN_PROTOCOL_PREFIX) :])
    return websocket.query_params.get(TOKEN_QUERY_PARAMETER)


def application_protocols(websocket: WebSocket) -> list[str]:
    protocols: list[str] = websocket.scope.get("subprotocols", [])
    return [p for p in protocols if not p.startswith(TOKEN_PROTOCOL_PREFIX)]


async def refuse(websocket: WebSocket, code: int, reason: str) -> None:
    await websocket.accept()
    await websocket.close(code=code, reason=reason[:120])


async def proxy_socket(
    websocket: WebSocket,
    upstream_base: str,
    *,
    path: str,
    identity: str,
    request_id: str | None,
    max_frame_bytes: int,
) -> None:
    """Relay frames both ways until either side closes; ``path`` is the raw path, checked
    by :func:`gateway.paths.forwardable_path`. A frame from chat over ``max_frame_bytes``
    closes the socket (1009), as the gateway's server does for a caller's frame."""
    query = [(k, v) for k, v in websocket.query_params.multi_items() if k != TOKEN_QUERY_PARAMETER]
    url = upstream_base.replace("http", "ws", 1) + path
    if query:
        url += "?" + urlencode(query)
    headers = {IDENTITY_HEADER: identity}
    if request_id:
        headers["X-Request-ID"] = request_id
    try:
        upstream = await connect(
            url,
            additional_headers=headers,
            subprotocols=application_protocols(websocket) or None,  # type: ignore[arg-type]
            open_timeout=5,
            max_size=max_frame_bytes,
        )
    except InvalidStatus as exc:
        status = exc.response.status_code
        code = {401: CLOSE_UNAUTHORIZED, 403: CLOSE_FORBIDDEN}.get(status, CLOSE_TRY_AGAIN)
        await refuse(websocket, code, f"chat refused the socket ({status})")
        return
    except (OSError, InvalidHandshake, TimeoutError):
        await refuse(websocket, CLOSE_TRY_AGAIN, "chat is unavailable")
        return
    async with upstream:
        await websocket.accept(subprotocol=upstream.subprotocol)
        await _relay(websocket, upstream)


async def _relay(websocket: WebSocket, upstream: ClientConnection) -> None:
    async def client_to_upstream() -> None:
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    await upstream.close(code=message.get("code", 1000))
                    return
                if message.get("text") is not None:
                    await upstream.send(message["text"])
                elif message.get("bytes") is not None:
                    await upstream.send(message["bytes"])
        except (WebSocketDisconnect, ConnectionClosed):
            await upstream.close()

    async def upstream_to_client() -> None:
        try:
            async for frame in upstream:
                if isinstance(frame, str):
                    await websocket.send_text(frame)
                else:
                    await websocket.send_bytes(frame)
            code = upstream.close_code or 1000
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd else 1011
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.close(code=code)

    tasks = [asyncio.create_task(client_to_upstream()), asyncio.create_task(upstream_to_client())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
