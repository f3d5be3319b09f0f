"""The sockets this replica serves, by project, each with a bounded send queue.

Frames reach a replica from the bus (every replica reads every message and signal, see
broadcast.py) and go to the queues of the sockets of their project. A socket whose
client stops reading fills its queue; it is then closed (the client resumes on
reconnect), so that a slow client never slows the others. A socket whose caller no longer
takes part in the conversation is marked ``revoked`` (see membership.py); it is then
closed with 4403 and receives nothing more.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from gala.identity import Principal

Frame = dict[str, Any]


@dataclass(eq=False)
class Listener:
    project_id: str
    principal: Principal
    queue: asyncio.Queue[Frame]
    overflowed: asyncio.Event = field(default_factory=asyncio.Event)
    revoked: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when its caller no longer takes part: the socket is closed (4403)."""


class LiveHub:
    def __init__(self, queue_size: int) -> None:
        self._queue_size = queue_size
        self._listeners: dict[str, set[Listener]] = defaultdict(set)
        self._by_user: dict[tuple[str, str], set[Listener]] = defaultdict(set)
        self.ready = asyncio.Event()
        """Set once this replica reads the bus (every frame published after reaches it)."""

    def join(self, project_id: str, principal: Principal) -> Listener:
        listener = Listener(project_id, principal, asyncio.Queue(self._queue_size))
        self._listeners[project_id].add(listener)
        self._by_user[(principal.venue_id, principal.user_id)].add(listener)
        return listener

    def leave(self, listener: Listener) -> None:
        listeners = self._listeners.get(listener.project_id)
        if listeners is not None:
            listeners.discard(listener)
            if not listeners:
                del self._listeners[listener.project_id]
        user = (listener.principal.venue_id, listener.principal.user_id)
        of_user = self._by_user.get(user)
        if of_user is not None:
            of_user.discard(listener)
            if not of_user:
                del self._by_user[user]

    def watches(self, project_id: str) -> bool:
        return project_id in self._listeners

    def of_project(self, project_id: str) -> list[Listener]:
        return list(self._listeners.get(project_id, ()))

    def of_user(self, venue_id: str, user_id: str) -> list[Listener]:
        return list(self._by_user.get((venue_id, user_id), ()))

    def everyone(self) -> list[Listener]:
        return [listener for listeners in self._listeners.values() for listener in listeners]

    def deliver(self, project_id: str, frame: Frame) -> None:
        for listener in list(self._listeners.get(project_id, ())):
            if listener.revoked.is_set():
                continue  # its caller takes part no more: it is being closed
            try:
                listener.queue.put_nowait(frame)
            except asyncio.QueueFull:
                listener.overflowed.set()  # too slow: its socket is closed
