"""Use cases for who takes part in a conversation: judging a caller (every HTTP request
and every frame a socket sends), and re-judging the callers of open sockets when the
copy of a project, its tasks or a user changes."""

from __future__ import annotations

from collections.abc import Sequence

from chat.conversations.domain import Conversation, ConversationNotFound, NotAMember
from chat.conversations.repository import ConversationRepository, UserCopyRepository
from gala.identity import Principal


class Membership:
    def __init__(self, conversations: ConversationRepository, users: UserCopyRepository) -> None:
        self._conversations = conversations
        self._users = users

    async def judge(self, principal: Principal, project_id: str) -> tuple[Conversation, Principal]:
        """The project's conversation and who the caller is in it (their role as chat's
        copy of the user has it); 404 for an unknown project, 403 for a non-member."""
        conversation = await self._conversations.get(principal.venue_id, project_id)
        if conversation is None:
            raise ConversationNotFound()
        user = await self._users.get(principal.venue_id, principal.user_id)
        current = conversation.admits(principal, user)
        if current is None:
            raise NotAMember()
        return conversation, current

    async def still_in(
        self, venue_id: str, project_id: str, principals: Sequence[Principal]
    ) -> list[bool]:
        """For each of the venue's ``principals`` (open sockets of the project): whether
        they still take part, read from the store now (one read of the conversation, one
        of the users' copies)."""
        conversation = await self._conversations.get(venue_id, project_id)
        if conversation is None:
            return [False] * len(principals)
        users = await self._users.of_users(venue_id, (p.user_id for p in principals))
        return [
            p.venue_id == venue_id and conversation.admits(p, users.get(p.user_id)) is not None
            for p in principals
        ]
