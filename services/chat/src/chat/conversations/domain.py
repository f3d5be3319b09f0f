"""A project's conversation, and who takes part in it.

Chat keeps its own copy of what it needs of projects and tasks (from their events): a
conversation per project, its CLIENT users, and who is assigned to its tasks. Members
are the project's client users, the venue's ADMINs and PROJECT_MANAGERs, and the STAFF
assigned to at least one of its tasks; anyone else is refused (403).
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
