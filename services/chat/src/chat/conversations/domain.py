"""A project's conversation, and who takes part in it.

Chat keeps its own copy of what it needs of projects and tasks (from their events): a
conversation per project, its CLIENT users, and who is assigned to its tasks. Members
are the project's client users, the venue's ADMINs and PROJECT_MANAGERs, and the STAFF
assigned to at least one of its tasks; anyone else is refused (403).

Membership follows changes both ways: the copy keeps the newest state by event time (a
client dropped from the project, a task given to someone else or deleted takes the
member out), and a caller is judged by chat's copy of the user as well as by their
token: a deactivated user takes part in nothing, and a caller takes part only if both
the role their token names and the role chat's copy gives them (their newest user
event) make them a member. Either may be the older one: a token is as old as the open
socket it came with (or the gateway's cache), a copy as late as the last event read; so
whichever of the two says no wins.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gala.errors import Forbidden, GalaError, NotFound
from gala.identity import Principal, Role

TEAM_ROLES = frozenset({Role.ADMIN, Role.PROJECT_MANAGER})


class ConversationError(GalaError):
    """Base of the conversations module's errors."""


class ConversationNotFound(ConversationError, NotFound):
    def __init__(self) -> None:
        super().__init__("No such project conversation in this venue.")


class NotAMember(ConversationError, Forbidden):
    def __init__(self) -> None:
        super().__init__("Only the project's client, its team and its assigned staff take part.")


@dataclass(frozen=True)
class Conversation:
    project_id: str
    venue_id: str
    name: str | None = None
    contact_id: str | None = None
    client_ids: tuple[str, ...] = ()
    assignees: dict[str, str] = field(default_factory=dict)
    """Task id -> the user it is assigned to."""
    last_seq: int = 0

    def is_member(self, principal: Principal) -> bool:
        if principal.venue_id != self.venue_id:
            return False
        if principal.role in TEAM_ROLES:
            return True
        if principal.role is Role.CLIENT:
            return principal.user_id in self.client_ids
        if principal.role is Role.STAFF:
            return principal.user_id in self.assignees.values()
        return False

    def ensure_member(self, principal: Principal) -> None:
        if not self.is_member(principal):
            raise NotAMember()

    def admits(self, principal: Principal, user: UserCopy | None) -> Principal | None:
        """Who ``principal`` is in this conversation (with the role chat's copy of the
        user gives them), or ``None`` if they take no part (any more): a member by the
        token's role and by the copy's, and not deactivated."""
        if not self.is_member(principal):
            return None
        current = as_known(principal, user)
        return current if current is not None and self.is_member(current) else None


@dataclass(frozen=True)
class UserCopy:
    """A venue's user as their newest event describes them (``role`` as published)."""

    user_id: str
    venue_id: str
    role: str
    active: bool


def as_known(principal: Principal, user: UserCopy | None) -> Principal | None:
    """``principal`` with the role chat's copy of the user gives them; ``None`` when the
    copy says they are deactivated (or names a role chat does not know). Without a copy
    (no event about them read yet) the token is all there is."""
    if user is None:
        return principal
    if not user.active or user.user_id != principal.user_id:
        return None
    try:
        role = Role(user.role)
    except ValueError:
        return None
    return principal if role is principal.role else principal.model_copy(update={"role": role})
