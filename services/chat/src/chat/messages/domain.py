"""Messages of a project's conversation.

Pure: no I/O. Rules:

- a message is ``text`` (up to ``TEXT_MAX`` characters, kept exactly as sent: frontends
  render it, and the API never turns it into HTML), ``file`` (its metadata points to a
  billing document or an upload) or ``system`` (written by Gala from other services'
  events, never by a person);
- each has the next number of its project's sequence, so that clients can order and
  de-duplicate what they receive, and resume after the last number they saw.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from gala.contracts.chat import MessageSent, MessageType
from gala.errors import GalaError, InvalidInput
from gala.events.model import Event
from gala.identity import Role

TEXT_MAX: Final = 4000
METADATA_MAX_BYTES: Final = 4096
SYSTEM_SENDER: Final = "system"
SYSTEM_ID_NAMESPACE: Final = uuid.UUID("2a9f6a3e-4f0c-4b9b-9d36-7c1f0d3e5b21")


class MessageError(GalaError):
    """Base of the messages module's errors."""


class InvalidMessage(MessageError, InvalidInput):
    pass


def system_message_id(source_event_id: str) -> str:
    """The id of the system message an event becomes: the same however often it arrives."""
    return str(uuid.uuid5(SYSTEM_ID_NAMESPACE, source_event_id))


def check_content(message_type: MessageType, content: str, metadata: dict[str, Any] | None) -> None:
    if message_type is MessageType.SYSTEM:
        raise InvalidMessage("System messages are written by Gala, not sent.")
    if len(content) > TEXT_MAX:
        raise InvalidMessage(f"A message has at most {TEXT_MAX} characters.")
    if message_type is MessageType.TEXT and not content.strip():
        raise InvalidMessage("A text message needs some text.")
    if metadata is not None and len(json.dumps(metadata).encode()) > METADATA_MAX_BYTES:
        raise InvalidMessage(f"metadata may take at most {METADATA_MAX_BYTES} bytes as JSON.")
    names_a_file = metadata is not None and bool(metadata.get("documentId") or metadata.get("url"))
    if message_type is MessageType.FILE and not names_a_file:
        raise InvalidMessage("A file message's metadata names a documentId or a url.")


@dataclass
class Message:
    id: str
    project_id: str
    venue_id: str
    seq: int
    sender_id: str
    message_type: MessageType
    content: str
    created_at: datetime
    sender_role: Role | None = None
    metadata: dict[str, Any] | None = None
    contact_id: str | None = None
    version: int = 1
    """Messages never change: saved once."""
    pending_events: list[Event] = field(default_factory=list)

    @classmethod
    def sent(
        cls,
        *,
        message_id: str,
        project_id: str,
        venue_id: str,
        seq: int,
        sender_id: str,
        sender_role: Role | None,
        message_type: MessageType,
        content: str,
        metadata: dict[str, Any] | None,
        contact_id: str | None,
        now: datetime,
    ) -> Message:
        message = cls(
            id=message_id, project_id=project_id, venue_id=venue_id, seq=seq,
            sender_id=sender_id, sender_role=sender_role, message_type=message_type,
            content=content, metadata=metadata, contact_id=contact_id, created_at=now,
        )  # fmt: skip
        message.pending_events.append(
            MessageSent(
                message_id=message.id,
                project_id=project_id,
                venue_id=venue_id,
                sender_id=sender_id,
                sender_role=sender_role,
                message_type=message_type,
                sequence=seq,
                contact_id=contact_id,
                sent_at=now,
            )
        )
        return message

    def collect_events(self) -> list[Event]:
        events, self.pending_events = self.pending_events, []
        return events
