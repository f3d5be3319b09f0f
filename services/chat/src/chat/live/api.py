"""The chat WebSocket: ``/api/v1/projects/{id}/chat`` (through the gateway).

On connect the caller must take part in the project's conversation (else the socket is
closed with 4403; 4401 without a valid identity; 4404 for an unknown project). With
``?after=<seq>`` the client first receives everything it missed, in order. Then, live:

- ``{"type": "message", "message": {...}}`` for each new message, in sequence order with
  no gap and no duplicate (a message that arrives ahead of one it follows makes the socket
  read the missing ones from the store first);
- ``{"type": "typing", "userId": ...}`` and ``{"type": "read", "userId": ..., "seq": ...}``.

A client sends ``{"type": "message", "content": ..., "messageType": "text"}``,
``{"type": "typing"}`` or ``{"type": "read", "seq": n}``. A client that stops reading is
closed with 4008 once its queue is full; a user sending too fast gets an ``error`` frame.
Dead sockets are closed by the server's WebSocket pings.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from typing import Any
from weakref import WeakKeyDictionary

from fastapi import APIRouter, WebSocket
from pydantic import ValidationError
from starlette.websockets import WebSocketDisconnect

from chat.conversations.domain import ConversationNotFound, NotAMember
from chat.conversations.repository import ConversationRepository
from chat.live.broadcast import hub_of, send_signal
from chat.live.hub import Frame, Listener
from chat.messages.domain import InvalidMessage, Message
from chat.messages.repository import MessageRepository
from chat.messages.schemas import MessageOut, SendIn
from chat.messages.service import MessageService
from chat.settings import chat_settings
from gala.app import Runtime
from gala.contracts.chat import MessageType
from gala.errors import Unauthorized
from gala.identity import IDENTITY_HEADER, Principal

log = logging.getLogger(__name__)
router = APIRouter(tags=["chat"])
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_TOO_SLOW = 4008


class SendRate:
    """A user's sends in the last minute (per replica)."""

    def __init__(self, per_minute: int) -> None:
        self._per_minute = per_minute
        self._sent: dict[str, deque[float]] = {}

    def allow(self, user_id: str) -> bool:
        now = time.monotonic()
        sent = self._sent.setdefault(user_id, deque())
        while sent and sent[0] <= now - 60:
            sent.popleft()
        if len(sent) >= self._per_minute:
            return False
        sent.append(now)
        return True


_RATES: WeakKeyDictionary[Runtime, SendRate] = WeakKeyDictionary()


@router.websocket("/api/v1/projects/{project_id}/chat")
async def chat_socket(websocket: WebSocket, project_id: str) -> None:
    runtime: Runtime = websocket.app.state.runtime
    try:
        principal = runtime.tokens.verify(websocket.headers.get(IDENTITY_HEADER))
    except Unauthorized:
        await _refuse(websocket, CLOSE_UNAUTHORIZED, "Unauthorized")
        return
    messages = MessageService(
        MessageRepository(runtime.store, runtime.outbox), ConversationRepository(runtime.store)
    )
    hub = hub_of(runtime)
    listener = hub.join(project_id, principal)  # before reading: nothing falls in between
    try:
        try:
            conversation = await messages.conversation(principal, project_id)
        except ConversationNotFound:
            await _refuse(websocket, CLOSE_NOT_FOUND, "No such project conversation")
            return
        except NotAMember:
            await _refuse(websocket, CLOSE_FORBIDDEN, "Not a member of this conversation")
            return
        await websocket.accept()
        after = websocket.query_params.get("after")
        last = int(after) if after and after.isdigit() else conversation.last_seq
        session = _Session(websocket, runtime, messages, principal, project_id, listener, last)
        await session.run()
    finally:
        hub.leave(listener)


async def _refuse(websocket: WebSocket, code: int, reason: str) -> None:
    await websocket.accept()
    await websocket.close(code=code, reason=reason)


class _Session:
    def __init__(
        self,
        websocket: WebSocket,
        runtime: Runtime,
        messages: MessageService,
        principal: Principal,
        project_id: str,
        listener: Listener,
        last: int,
    ) -> None:
        self.websocket = websocket
        self.runtime = runtime
        self.messages = messages
        self.principal = principal
        self.project_id = project_id
        self.listener = listener
        self.last = last
        settings = chat_settings(runtime.settings)
        self.rate = _RATES.setdefault(runtime, SendRate(settings.send_rate_per_minute))
        self._sending = asyncio.Lock()  # two tasks write to the socket: one frame at a time

    async def _emit(self, frame: Frame) -> None:
        async with self._sending:
            await self.websocket.send_json(frame)

    async def run(self) -> None:
        await self._catch_up()
        tasks = [
            asyncio.create_task(self._write()),
            asyncio.create_task(self._read()),
            asyncio.create_task(self.listener.overflowed.wait()),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if self.listener.overflowed.is_set():
            with contextlib.suppress(Exception):
                await self.websocket.close(CLOSE_TOO_SLOW, "Too slow: reconnect with after=<seq>")
        for task in done:
            error = None if task.cancelled() else task.exception()
            if error is not None and not isinstance(error, WebSocketDisconnect):
                log.warning("chat socket ended by an error", exc_info=error)

    async def _catch_up(self, up_to: int | None = None) -> None:
        """Send, in order, what came after the last message sent (up to ``up_to``)."""
        while up_to is None or self.last < up_to:
            missed = await self.messages.since(self.principal, self.project_id, self.last)
            for message in missed:
                await self._send_message(message)
            if len(missed) < 500:
                break

    async def _send_message(self, message: Message) -> None:
        if message.seq <= self.last:
            return  # sent already
        frame = {
            "type": "message",
            "message": MessageOut.of(message).model_dump(mode="json", by_alias=True),
        }
        await self.websocket.send_json(frame)
        self.last = message.seq

    async def _write(self) -> None:
        while True:
            frame = await self.listener.queue.get()
            if frame.get("type") == "message-sent":
                seq = int(frame["seq"])
                if seq > self.last:
                    await self._catch_up(up_to=seq)  # the gap first, then this one
                continue
            if frame.get("userId") == self.principal.user_id:
                continue  # one's own typing and read markers
            await self._emit(frame)

    async def _read(self) -> None:
        while True:
            text = await self.websocket.receive_text()
            try:
                frame = json.loads(text)
                if not isinstance(frame, dict):
                    raise TypeError("a frame is a JSON object")
                await self._handle(frame)
            except (ValueError, TypeError, KeyError) as exc:
                await self._emit({"type": "error", "detail": f"Bad frame: {exc}"[:500]})

    async def _handle(self, frame: Frame) -> None:
        kind = frame.get("type")
        user_id = self.principal.user_id
        if kind == "message":
            await self._send(frame)
        elif kind == "typing":
            await send_signal(self.runtime, self.project_id, {"type": "typing", "userId": user_id})
        elif kind == "read":
            seq = await self.messages.mark_read(self.principal, self.project_id, int(frame["seq"]))
            signal = {"type": "read", "userId": user_id, "seq": seq}
            await send_signal(self.runtime, self.project_id, signal)
        else:
            await self._emit({"type": "error", "detail": f"Unknown frame type {kind!r}."})

    async def _send(self, frame: dict[str, Any]) -> None:
        if not self.rate.allow(self.principal.user_id):
            await self.websocket.send_json(
                {"type": "error", "detail": "Too many messages; slow down."}
            )
            return
        try:
            body = SendIn.model_validate({k: v for k, v in frame.items() if k != "type"})
            await self.messages.send(
                self.principal,
                self.project_id,
                message_type=MessageType(body.message_type),
                content=body.content,
                metadata=body.metadata,
            )
        except (ValidationError, InvalidMessage) as exc:
            await self._emit({"type": "error", "detail": str(exc)[:500]})
