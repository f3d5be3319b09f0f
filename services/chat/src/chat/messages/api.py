"""HTTP entry points for a project's messages (the WebSocket comes next)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from chat.conversations.domain import ConversationNotFound, NotAMember
from chat.conversations.repository import ConversationRepository, UserCopyRepository
from chat.messages.domain import InvalidMessage
from chat.messages.repository import MessageRepository
from chat.messages.schemas import (
    MessageOut,
    MessagesOut,
    ReadIn,
    ReadOut,
    SendIn,
    UnreadListOut,
    UnreadOut,
)
from chat.messages.service import RESUME_MAX, MessageService
from gala.api import Cursor, Limit, PageOut, problems
from gala.app import OutboxDep, StoreDep
from gala.contracts.chat import MessageType
from gala.identity import CurrentPrincipal


async def message_service(store: StoreDep, outbox: OutboxDep) -> MessageService:
    return MessageService(
        MessageRepository(store, outbox), ConversationRepository(store), UserCopyRepository(store)
    )


Messages = Annotated[MessageService, Depends(message_service)]
router = APIRouter(tags=["chat"])
MEMBER_PROBLEMS = (ConversationNotFound, NotAMember)


@router.get("/api/v1/projects/{project_id}/messages", responses=problems(*MEMBER_PROBLEMS))
async def history(
    principal: CurrentPrincipal,
    messages: Messages,
    project_id: str,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> PageOut[MessageOut]:
    """The conversation, newest first, a page at a time (members only)."""
    items, next_cursor = await messages.history(principal, project_id, limit, cursor)
    return PageOut[MessageOut](items=[MessageOut.of(m) for m in items], next_cursor=next_cursor)


@router.get("/api/v1/projects/{project_id}/messages/since", responses=problems(*MEMBER_PROBLEMS))
async def since(
    principal: CurrentPrincipal,
    messages: Messages,
    project_id: str,
    after: Annotated[int, Query(ge=0, description="The last sequence number seen")],
    limit: Annotated[int, Query(ge=1, le=RESUME_MAX)] = RESUME_MAX,
) -> MessagesOut:
    """Everything after ``after``, oldest first: what a client missed (ask again while
    it answers ``limit`` messages)."""
    items = await messages.since(principal, project_id, after, limit)
    return MessagesOut(items=[MessageOut.of(m) for m in items])


@router.post(
    "/api/v1/projects/{project_id}/messages",
    status_code=status.HTTP_201_CREATED,
    responses=problems(*MEMBER_PROBLEMS, InvalidMessage),
)
async def send(
    principal: CurrentPrincipal,
    messages: Messages,
    project_id: str,
    body: SendIn,
) -> MessageOut:
    """Send a message (stored with its sequence number before anyone receives it)."""
    message = await messages.send(
        principal,
        project_id,
        message_type=MessageType(body.message_type),
        content=body.content,
        metadata=body.metadata,
    )
    return MessageOut.of(message)


@router.post("/api/v1/projects/{project_id}/messages/read", responses=problems(*MEMBER_PROBLEMS))
async def mark_read(
    principal: CurrentPrincipal, messages: Messages, project_id: str, body: ReadIn
) -> ReadOut:
    """Read up to ``seq`` (the marker never moves back)."""
    seq = await messages.mark_read(principal, project_id, body.seq)
    return ReadOut(project_id=project_id, seq=seq)


@router.get("/api/v1/messages/unread")
async def unread(principal: CurrentPrincipal, messages: Messages) -> UnreadListOut:
    """For each conversation the caller takes part in: how many messages by others they
    have not read."""
    return UnreadListOut(items=[UnreadOut.of(u) for u in await messages.unread(principal)])
