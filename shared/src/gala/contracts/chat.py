"""Events the chat service publishes, on ``gala.chat.message``. Subject: the message id."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from gala.events.model import Event
from gala.identity import Role

MESSAGE_TOPIC = "gala.chat.message"


class MessageType(StrEnum):
    TEXT = "text"
    FILE = "file"
    SYSTEM = "system"


class MessageSent(Event, type="gala.message.sent.v1", topic=MESSAGE_TOPIC):
    """A message was posted in a project's conversation (durable before delivery).

    ``contact_id`` is the project's client contact when chat knows it; a message whose
    ``sender_role`` is CLIENT counts as the client's engagement.
    """

    PARTITION_KEY: ClassVar[str] = "project_id"
    """The Kafka key is the project, not the subject: a conversation stays in order."""

    message_id: str
    project_id: str
    venue_id: str
    sender_id: str
    sender_role: Role | None = None
    message_type: MessageType
    sequence: int
    contact_id: str | None = None
    sent_at: datetime
