"""The chat WebSocket: ``/api/v1/projects/{id}/chat`` (through the gateway).

On connect the caller must take part in the project's conversation (else the socket is
closed with 4403; 4401 without a valid identity; 4404 for an unknown project). With
``?after=<seq>`` the client first receives everything it missed, in order. Then, live:

- ``{"type": "message", "message": {...}}`` for each new message, in sequence order with
  no gap and no duplicate (each replica reads a new message once and hands it to its
  sockets; one that arrives ahead of one it follows makes its socket read the missing
  ones from the store first);
- ``{"type": "typing", "userId": ...}`` and ``{"type": "read", "userId": ..., "seq": ...}``.

A client sends ``{"type": "message", "content": ..., "messageType": "text", "ref": ...}``
(answered with ``{"type": "ack", "ref": ..., "seq": ...}`` once stored),
``{"type": "typing"}`` or ``{"type": "read", "seq": n}``. A client that stops reading is
closed with 4008 once its queue is full; a user sending messages faster than
``send_rate_per_minute``, or typing and read frames faster than ``signal_rate_per_minute``,
gets an ``error`` frame for each one over (it is dropped); a frame larger than
``socket_max_frame_bytes`` closes the socket with 1009. Dead sockets are closed by the
server's WebSocket pings.

Membership is judged on connect, again on every frame the client sends (message, typing,
read), and whenever chat's copy of the project, its tasks or the user changes (a client
removed, a staff member's last task of the project given to someone else or deleted, the
user deactivated or given another role): a caller who no longer takes part has their
socket closed with 4403 on every replica (membership.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from weakref import WeakKeyDictionary

from fastapi import APIRouter, WebSocket
from prometheus_client import Gauge
from pydantic import ValidationError
from starlette.websockets import WebSocketDisconnect

from chat.conversations.domain import ConversationNotFound, NotAMember
from chat.conversations.repository import ConversationRepository, UserCopyRepository
from chat.live.broadcast import hub_of, message_frame, send_signal
from chat.live.hub import Frame, Listener
from chat.messages.domain import InvalidMessage
from chat.messages.repository import MessageRepository
from chat.messages.schemas import MessageOut, SendIn
from chat.messages.service import RESUME_MAX, MessageService
from chat.settings import chat_settings
from gala.app import Runtime
from gala.contracts.chat import MessageType
from gala.errors import Unauthorized
from gala.identity import IDENTITY_HEADER, Principal

OPEN_SOCKETS = Gauge("gala_chat_open_sockets", "Chat sockets this replica serves now.")
log = logging.getLogger(__name__)
router = APIRouter(tags=["chat"])
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_TOO_SLOW = 4008
CLOSE_TOO_BIG = 1009
INBOUND_MAX = 64
GAP_WAIT_SECONDS = 0.5
"""How long a socket holds a message that came early before it reads the gap."""


class SendRate:
    """A user's sends in the last minute (per replica: N replicas allow N times as many)."""

    def __init__(self, per_minute: int) -> None:
        self._per_minute = per_minute
        self._sent: dict[str, deque[float]] = {}
        self._calls = 0

    def allow(self, user_id: str) -> bool:
        now = time.monotonic()
        self._calls += 1
        if self._calls % 1000 == 0:  # forget users silent for a minute
            for user in [u for u, sent in self._sent.items() if sent[-1] <= now - 60]:
                del self._sent[user]
        sent = self._sent.setdefault(user_id, deque())
        while sent and sent[0] <= now - 60:
            sent.popleft()
        if len(sent) >= self._per_minute:
            return False
        sent.append(now)
        return True


_RATES: WeakKeyDictionary[Runtime, SendRate] = WeakKeyDictionary()
_SIGNAL_RATES: WeakKeyDictionary[Runtime, SendRate] = WeakKeyDictionary()


@router.websocket("/api/v1/projects/{project_id}/chat")
async def chat_socket(websocket: WebSocket, project_id: str) -> None:
    runtime: Runtime = websocket.app.state.runtime
    try:
        principal = runtime.tokens.verify(websocket.headers.get(IDENTITY_HEADER))
    except Unauthorized:
        await _refuse(websocket, CLOSE_UNAUTHORIZED, "Unauthorized")
        return
    messages = MessageService(
        MessageRepository(runtime.store, runtime.outbox),
        ConversationRepository(runtime.store),
        UserCopyRepository(runtime.store),
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
        OPEN_SOCKETS.inc()
        try:
            after = websocket.query_params.get("after")
            last = int(after) if after and after.isdigit() else conversation.last_seq
            session = _Session(websocket, runtime, messages, principal, project_id, listener, last)
            await session.run()
        finally:
            OPEN_SOCKETS.dec()
    finally:
        hub.leave(listener)


async def _refuse(websocket: WebSocket, code: int, reason: str) -> None:
    await websocket.accept()
    await websocket.close(code=code, reason=reason)


class _Session:
    """One socket: frames out in sequence order (from this replica's hub, reading the
    store only to fill a gap), frames in through a bounded queue handled one at a time
    (reading never waits for a message to be stored, so pings are always answered)."""

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
        self.repository = MessageRepository(runtime.store, runtime.outbox)
        self.principal = principal
        self.project_id = project_id
        self.listener = listener
        self.last = last
        settings = chat_settings(runtime.settings)
        self.rate = _RATES.setdefault(runtime, SendRate(settings.send_rate_per_minute))
        self.signal_rate = _SIGNAL_RATES.setdefault(
            runtime, SendRate(settings.signal_rate_per_minute)
        )
        self.max_frame_bytes = settings.socket_max_frame_bytes
        self.inbound: asyncio.Queue[Frame] = asyncio.Queue(INBOUND_MAX)
        self.too_big = asyncio.Event()
        self._sending = asyncio.Lock()  # several tasks write to the socket: a frame at a time

    async def run(self) -> None:
        if self.listener.revoked.is_set():
            await self._close(CLOSE_FORBIDDEN, "No longer a member of this conversation")
            return
        await self._catch_up()
        tasks = [
            asyncio.create_task(self._write()),
            asyncio.create_task(self._read()),
            asyncio.create_task(self._handle_inbound()),
            asyncio.create_task(self.listener.overflowed.wait()),
            asyncio.create_task(self.listener.revoked.wait()),
            asyncio.create_task(self.too_big.wait()),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if self.listener.revoked.is_set():
            await self._close(CLOSE_FORBIDDEN, "No longer a member of this conversation")
        elif self.too_big.is_set():
            await self._close(CLOSE_TOO_BIG, f"A frame may take at most {self.max_frame_bytes} B")
        elif self.listener.overflowed.is_set():
            await self._close(CLOSE_TOO_SLOW, "Too slow: reconnect with after=<seq>")
        for task in done:
            error = None if task.cancelled() else task.exception()
            if error is not None and not isinstance(error, WebSocketDisconnect):
                log.warning("chat socket ended by an error", exc_info=error)

    async def _close(self, code: int, reason: str) -> None:
        with contextlib.suppress(Exception):
            async with self._sending:
                await self.websocket.close(code, reason)

    async def _emit(self, frame: Frame) -> None:
        async with self._sending:
            if self.listener.revoked.is_set():
                return  # a former member receives nothing more
            await self.websocket.send_json(frame)

    # --- out --------------------------------------------------------------------------

    async def _catch_up(self, before: int | None = None) -> None:
        """Send, in order, what came after the last message sent (and before ``before``)."""
        while before is None or self.last < before - 1:
            missed = await self.repository.after(
                self.principal.venue_id, self.project_id, self.last, RESUME_MAX
            )
            for message in missed:
                if before is not None and message.seq >= before:
                    return
                await self._send_message(message_frame(MessageOut.of(message)))
            if len(missed) < RESUME_MAX:
                return

    async def _send_message(self, frame: Frame) -> None:
        if int(frame["message"]["seq"]) <= self.last:
            return  # sent already
        async with self._sending:
            if self.listener.revoked.is_set():
                return  # a former member receives nothing more
            await self.websocket.send_text(frame["text"])
        self.last = int(frame["message"]["seq"])

    async def _write(self) -> None:
        ahead: dict[int, Frame] = {}  # messages that came before one they follow
        while True:
            try:
                frame = await asyncio.wait_for(
                    self.listener.queue.get(), GAP_WAIT_SECONDS if ahead else None
                )
            except TimeoutError:
                # the missing one is not coming through the bus (yet): read the gap
                await self._catch_up(before=min(ahead))
                await self._flush(ahead)
                continue
            if frame.get("type") == "message":
                ahead[int(frame["message"]["seq"])] = frame
                await self._flush(ahead)
                continue
            if frame.get("userId") == self.principal.user_id:
                continue  # one's own typing and read markers
            await self._emit(frame)

    async def _flush(self, ahead: dict[int, Frame]) -> None:
        """Send the held messages that now follow the last one sent, in order."""
        for seq in sorted(ahead):
            if seq <= self.last:
                del ahead[seq]  # sent already (by a catch-up)
            elif seq == self.last + 1:
                await self._send_message(ahead.pop(seq))
            else:
                return

    # --- in ---------------------------------------------------------------------------

    async def _read(self) -> None:
        while True:
            received = await self.websocket.receive()
            if received["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(received.get("code", 1000), received.get("reason"))
            text: str | None = received.get("text")
            size = len(text.encode()) if text is not None else len(received.get("bytes") or b"")
            if size > self.max_frame_bytes:
                self.too_big.set()
                return
            if text is None:
                await self._emit({"type": "error", "detail": "Frames are JSON text."})
                continue
            try:
                frame = json.loads(text)
                if not isinstance(frame, dict):
                    raise TypeError("a frame is a JSON object")
            except (ValueError, TypeError) as exc:
                await self._emit({"type": "error", "detail": f"Bad frame: {exc}"[:500]})
                continue
            try:
                self.inbound.put_nowait(frame)
            except asyncio.QueueFull:
                await self._emit(
                    {
                        "type": "error",
                        "ref": frame.get("ref"),
                        "detail": "Too many frames in flight; slow down.",
                    }
                )

    async def _handle_inbound(self) -> None:
        while True:
            frame = await self.inbound.get()
            try:
                await self._handle(frame)
            except (NotAMember, ConversationNotFound):
                self.listener.revoked.set()  # no longer a member: the socket is closed
                return
            except (ValueError, TypeError, KeyError) as exc:
                await self._emit(
                    {"type": "error", "ref": frame.get("ref"), "detail": f"Bad frame: {exc}"[:500]}
                )

    async def _handle(self, frame: Frame) -> None:
        kind = frame.get("type")
        user_id = self.principal.user_id
        if kind == "message":
            await self._send(frame)
        elif kind in ("typing", "read"):
            if not self.signal_rate.allow(user_id):
                detail = "Too many typing and read frames; slow down."
                await self._emit({"type": "error", "ref": frame.get("ref"), "detail": detail})
                return
            if kind == "typing":
                await self.messages.typing(self.principal, self.project_id)
                signal: Frame = {"type": "typing", "userId": user_id}
            else:
                seq = int(frame["seq"])
                seq = await self.messages.mark_read(self.principal, self.project_id, seq)
                signal = {"type": "read", "userId": user_id, "seq": seq}
            await send_signal(self.runtime, self.project_id, signal)
        else:
            await self._emit({"type": "error", "detail": f"Unknown frame type {kind!r}."})

    async def _send(self, frame: Frame) -> None:
        """Store the message (it reaches every socket through the bus); with a ``ref``,
        the sender gets an ``ack`` naming the message's sequence number once stored."""
        ref = frame.get("ref")
        if not self.rate.allow(self.principal.user_id):
            await self._emit(
                {"type": "error", "ref": ref, "detail": "Too many messages; slow down."}
            )
            return
        try:
            body = SendIn.model_validate(
                {k: v for k, v in frame.items() if k not in ("type", "ref")}
            )
            message = await self.messages.send(
                self.principal,
                self.project_id,
                message_type=MessageType(body.message_type),
                content=body.content,
                metadata=body.metadata,
            )
        except (ValidationError, InvalidMessage) as exc:
            await self._emit({"type": "error", "ref": ref, "detail": str(exc)[:500]})
            return
        if ref is not None:
            await self._emit({"type": "ack", "ref": ref, "id": message.id, "seq": message.seq})
