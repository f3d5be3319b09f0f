"""Use cases for messages: history, resume, send, read markers, unread counts, and the
system messages other services' events become."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from chat.conversations.domain import Conversation, as_known
from chat.conversations.repository import ConversationRepository, UserCopyRepository
from chat.conversations.service import Membership
from chat.messages.domain import SYSTEM_SENDER, Message, check_content, system_message_id
from chat.messages.repository import MessageRepository
from gala.contracts.chat import MessageType
from gala.identity import Principal
from gala.store import utc_now

Clock = Callable[[], datetime]
RESUME_MAX = 500


@dataclass(frozen=True)
class Unread:
    project_id: str
    unread: int
    last_seq: int


class MessageService:
    def __init__(
        self,
        messages: MessageRepository,
        conversations: ConversationRepository,
        users: UserCopyRepository,
        clock: Clock = utc_now,
    ) -> None:
        self._messages = messages
        self._conversations = conversations
        self._users = users
        self._clock = clock
        self._membership = Membership(conversations, users)

    async def conversation(self, principal: Principal, project_id: str) -> Conversation:
        """The project's conversation, if the caller takes part (403 otherwise)."""
        conversation, _ = await self._membership.judge(principal, project_id)
        return conversation

    async def typing(self, principal: Principal, project_id: str) -> None:
        """May the caller show they are typing here? (403/404 as above.)"""
        await self._membership.judge(principal, project_id)

    async def history(
        self, principal: Principal, project_id: str, limit: int, cursor: str | None
    ) -> tuple[list[Message], str | None]:
        await self.conversation(principal, project_id)
        return await self._messages.history(principal.venue_id, project_id, limit, cursor)

    async def since(
        self, principal: Principal, project_id: str, after_seq: int, limit: int = RESUME_MAX
    ) -> list[Message]:
        """Everything after ``after_seq``, in order: what a reconnecting client missed."""
        await self.conversation(principal, project_id)
        return await self._messages.after(principal.venue_id, project_id, after_seq, limit)

    async def send(
        self,
        principal: Principal,
        project_id: str,
        *,
        message_type: MessageType,
        content: str,
        metadata: dict[str, Any] | None,
    ) -> Message:
        """Stored (with its event) before anyone receives it."""
        conversation, sender = await self._membership.judge(principal, project_id)
        check_content(message_type, content, metadata)
        return await self._write(
            conversation,
            message_id=str(uuid.uuid4()),
            sender_id=sender.user_id,
            sender_role=sender.role,
            message_type=message_type,
            content=content,
            metadata=metadata,
        )

    async def mark_read(self, principal: Principal, project_id: str, seq: int) -> int:
        conversation = await self.conversation(principal, project_id)
        return await self._messages.mark_read(
            principal.venue_id, project_id, principal.user_id, min(seq, conversation.last_seq)
        )

    async def unread(self, principal: Principal) -> list[Unread]:
        """Per conversation the caller takes part in: messages by others not yet read."""
        user = await self._users.get(principal.venue_id, principal.user_id)
        if as_known(principal, user) is None:
            return []  # deactivated: takes part in nothing
        conversations = await self._conversations.of_venue(principal.venue_id)
        counts = []
        for conversation in conversations:
            if conversation.admits(principal, user) is None or not conversation.last_seq:
                continue
            read = await self._messages.read_up_to(conversation.project_id, principal.user_id)
            unread = await self._messages.count_unread(
                principal.venue_id, conversation.project_id, read, principal.user_id
            )
            counts.append(Unread(conversation.project_id, unread, conversation.last_seq))
        return counts

    # --- from events ------------------------------------------------------------------

    async def system(
        self,
        venue_id: str,
        project_id: str,
        *,
        source_event_id: str,
        content: str,
        metadata: dict[str, Any] | None = None,
    ) -> bool:
        """The system message an event becomes, once however often it arrives; ``False``
        when it exists already or the project has no conversation."""
        message_id = system_message_id(source_event_id)
        if await self._messages.exists(message_id):
            return False
        conversation = await self._conversations.get(venue_id, project_id)
        if conversation is None:
            return False
        try:
            await self._write(
                conversation,
                message_id=message_id,
                sender_id=SYSTEM_SENDER,
                sender_role=None,
                message_type=MessageType.SYSTEM,
                content=content,
                metadata=metadata,
            )
        except DuplicateKeyError:
            return False  # written meanwhile by a redelivery
        return True

    async def _write(self, conversation: Conversation, **fields: Any) -> Message:
        seq = await self._conversations.next_seq(conversation.venue_id, conversation.project_id)
        message = Message.sent(
            project_id=conversation.project_id,
            venue_id=conversation.venue_id,
            seq=seq,
            contact_id=conversation.contact_id,
            now=self._clock(),
            **fields,
        )
        await self._messages.insert(message)
        return message
