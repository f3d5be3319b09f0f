"""The messages API's bodies (camelCase JSON; content is plain text, never HTML)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from chat.messages.domain import TEXT_MAX, Message
from chat.messages.service import Unread
from gala.api import RequestBody, ResponseBody
from gala.contracts.chat import MessageType
from gala.identity import Role


class SendIn(RequestBody):
    content: Annotated[str, Field(max_length=TEXT_MAX)] = ""
    message_type: Literal["text", "file"] = "text"
    metadata: dict[str, Any] | None = None
    """For a file: ``{"documentId": ...}`` (a billing document) or ``{"url": ...}``."""


class ReadIn(RequestBody):
    seq: Annotated[int, Field(ge=0)]
    """The last message read (its sequence number)."""


class MessageOut(ResponseBody):
    id: str
    project_id: str
    seq: int
    sender_id: str
    sender_role: Role | None
    message_type: MessageType
    content: str
    metadata: dict[str, Any] | None
    created_at: datetime

    @classmethod
    def of(cls, m: Message) -> MessageOut:
        return cls(
            id=m.id,
            project_id=m.project_id,
            seq=m.seq,
            sender_id=m.sender_id,
            sender_role=m.sender_role,
            message_type=m.message_type,
            content=m.content,
            metadata=m.metadata,
            created_at=m.created_at,
        )


class MessagesOut(ResponseBody):
    items: list[MessageOut]


class ReadOut(ResponseBody):
    project_id: str
    seq: int


class UnreadOut(ResponseBody):
    project_id: str
    unread: int
    last_seq: int

    @classmethod
    def of(cls, u: Unread) -> UnreadOut:
        return cls(project_id=u.project_id, unread=u.unread, last_seq=u.last_seq)


class UnreadListOut(ResponseBody):
    items: list[UnreadOut]
