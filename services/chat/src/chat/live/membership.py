"""Open sockets follow membership: a socket whose caller no longer takes part in its
conversation is closed with 4403, on every API replica.

The worker that consumes a project, task or user event updates chat's copy and then
publishes a ``membership`` signal (the project, or the venue's user, whose copy changed)
on the ephemeral signal topic, which every API replica reads without a consumer group
(broadcast.py). Each replica then re-judges its open sockets of that project or user
against the stored copy (the conversation's members, the user's current role and
whether they are active) and revokes those that no longer pass. A replica also
re-judges every socket it serves every ``socket_recheck_seconds``: the safety net for a
signal it could not read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict

from chat.conversations.service import Membership
from chat.live.hub import Listener, LiveHub

log = logging.getLogger(__name__)
RETRY_SECONDS = 1.0


class MembershipWatch:
    """Re-judges this replica's sockets when their project's or user's copy changed."""

    def __init__(self, hub: LiveHub, membership: Membership, recheck_seconds: float) -> None:
        self._hub = hub
        self._membership = membership
        self._recheck_seconds = recheck_seconds
        self._projects: set[str] = set()
        self._users: set[tuple[str, str]] = set()
        self._everyone = False
        self._wake = asyncio.Event()

    def project_changed(self, project_id: str) -> None:
        if self._hub.watches(project_id):
            self._projects.add(project_id)
            self._wake.set()

    def user_changed(self, venue_id: str, user_id: str) -> None:
        if self._hub.of_user(venue_id, user_id):
            self._users.add((venue_id, user_id))
            self._wake.set()

    async def run(self) -> None:
        """Until cancelled: judge what was signalled as soon as it is, and everyone
        periodically."""
        loop = asyncio.get_running_loop()
        next_sweep = loop.time() + self._recheck_seconds
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, next_sweep - loop.time()))
            if loop.time() >= next_sweep:  # however busy with signals
                self._everyone = True
                next_sweep = loop.time() + self._recheck_seconds
            self._wake.clear()
            projects, users, everyone = self._projects, self._users, self._everyone
            self._projects, self._users, self._everyone = set(), set(), False
            try:
                await self.judge(self._listeners(projects, users, everyone))
            except Exception:
                log.exception("chat: open sockets could not be re-judged; trying again shortly")
                self._projects |= projects
                self._users |= users
                self._everyone |= everyone
                await asyncio.sleep(RETRY_SECONDS)
                self._wake.set()

    def _listeners(
        self, projects: set[str], users: set[tuple[str, str]], everyone: bool
    ) -> set[Listener]:
        if everyone:
            return set(self._hub.everyone())
        chosen = {listener for p in projects for listener in self._hub.of_project(p)}
        chosen.update(listener for v, u in users for listener in self._hub.of_user(v, u))
        return chosen

    async def judge(self, listeners: set[Listener]) -> int:
        """Revoke the sockets whose caller no longer takes part; how many were."""
        by_conversation: dict[tuple[str, str], list[Listener]] = defaultdict(list)
        for listener in listeners:
            if not listener.revoked.is_set():
                key = (listener.principal.venue_id, listener.project_id)
                by_conversation[key].append(listener)
        revoked = 0
        for (venue_id, project_id), group in by_conversation.items():
            verdicts = await self._membership.still_in(
                venue_id, project_id, [listener.principal for listener in group]
            )
            for listener, still_in in zip(group, verdicts, strict=True):
                if not still_in:
                    listener.revoked.set()
                    revoked += 1
        if revoked:
            log.info("chat: sockets of former members closed", extra={"sockets": revoked})
        return revoked
