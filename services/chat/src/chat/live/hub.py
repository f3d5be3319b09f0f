"""The sockets this replica serves, by project, each with a bounded send queue.

Frames reach a replica from the bus (every replica reads every message and signal, see
broadcast.py) and go to the queues of the sockets of their project. A socket whose
client stops reading fills its queue; it is then closed (the client resumes on
reconnect), so that a slow client never slows the others.
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


class LiveHub:
    def __init__(self, queue_size: int) -> None:
        self._queue_size = queue_size
        self._listeners: dict[str, set[Listener]] = defaultdict(set)
        self.ready = asyncio.Event()
        """Set once this replica reads the bus (every frame published after reaches it)."""

    def join(self, project_id: str, principal: Principal) -> Listener:
        listener = Listener(project_id, principal, asyncio.Queue(self._queue_size))
        self._listeners[project_id].add(listener)
        return listener

    def leave(self, listener: Listener) -> None:
        listeners = self._listeners.get(listener.project_id)
        if listeners is not None:
            listeners.discard(listener)
            if not listeners:
                del self._listeners[listener.project_id]

    def watches(self, project_id: str) -> bool:
        return project_id in self._listeners

    def deliver(self, project_id: str, frame: Frame) -> None:
        for listener in list(self._listeners.get(project_id, ())):
            try:
                listener.queue.put_nowait(frame)
            except asyncio.QueueFull:
                listener.overflowed.set()  # too slow: its socket is closed
