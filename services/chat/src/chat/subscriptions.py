"""Every event the chat service reacts to, in one place.

- project events -> the conversation's copy of the project (name, contact, CLIENT users:
  its members), and a created project gets its first system message;
- task events -> who is assigned to the project's tasks (STAFF assignees take part);
- user events -> whether a user is still active (a deactivated one takes part in none);
- payment due, overdue, paid and document created (ready to sign) and signed -> system
  messages in the project's conversation.

Every handler is idempotent: the copy keeps the newest state by event time (a project's
client list as its newest event has it, each task's assignee as of its newest event, a
user's role and whether they are active), and a system message's id derives from its
event's id. Once a project, task or user event has changed the copy, the handler
publishes a membership signal: every API replica re-judges its open sockets of that
project or user, and closes those of people who take part no more (live/membership.py).
"""

from __future__ import annotations

from chat.conversations.repository import ConversationRepository, UserCopyRepository
from chat.live.broadcast import membership_changed
from chat.messages.repository import MessageRepository
from chat.messages.service import MessageService
from gala.contracts.billing import (
    DocumentCreated,
    DocumentEvent,
    DocumentSigned,
    PaymentDue,
    PaymentEvent,
    PaymentOverdue,
    PaymentPaid,
)
from gala.contracts.contacts import USER_EVENTS, UserEvent
from gala.contracts.projects import (
    ProjectCreated,
    ProjectEvent,
    ProjectStatusChanged,
    ProjectUpdated,
    TaskAssigned,
    TaskCreated,
    TaskDeleted,
    TaskEvent,
    TaskUpdated,
)
from gala.events import EventContext, Subscriptions

subscriptions = Subscriptions()


def _messages(ctx: EventContext) -> MessageService:
    return MessageService(
        MessageRepository(ctx.store, ctx.outbox),
        ConversationRepository(ctx.store),
        UserCopyRepository(ctx.store),
    )


async def _system(ctx: EventContext, venue_id: str, project_id: str | None, content: str) -> None:
    if project_id is None:
        return  # not (yet) a project's: no conversation to tell
    await _messages(ctx).system(
        venue_id, project_id, source_event_id=ctx.envelope.id, content=content
    )


# --- projects and their tasks ---------------------------------------------------------


async def keep_project(event: ProjectEvent, ctx: EventContext) -> None:
    kept = await ConversationRepository(ctx.store).keep_project(
        event.venue_id,
        event.project_id,
        name=event.name,
        contact_id=event.contact_id,
        client_ids=list(event.client_ids),
        as_of=ctx.envelope.time,
    )
    if kept:  # a client may have left the project
        await membership_changed(ctx.store, event.venue_id, project_id=event.project_id)


for project_event in (ProjectCreated, ProjectUpdated, ProjectStatusChanged):
    subscriptions.on(project_event, name="conversations.project")(keep_project)


@subscriptions.on(ProjectCreated, name="system.project_created")
async def project_created(event: ProjectCreated, ctx: EventContext) -> None:
    await _system(ctx, event.venue_id, event.project_id, f"Project created: {event.name}.")


async def keep_assignee(event: TaskEvent, ctx: EventContext) -> None:
    assignee = None if isinstance(event, TaskDeleted) else event.assignee_id
    kept = await ConversationRepository(ctx.store).keep_assignee(
        event.venue_id, event.project_id, event.task_id, assignee, as_of=ctx.envelope.time
    )
    if kept:  # its former assignee may have had no other task of the project
        await membership_changed(ctx.store, event.venue_id, project_id=event.project_id)


for task_event in (TaskCreated, TaskUpdated, TaskAssigned, TaskDeleted):
    subscriptions.on(task_event, name="conversations.assignee")(keep_assignee)


async def keep_user(event: UserEvent, ctx: EventContext) -> None:
    kept = await UserCopyRepository(ctx.store).keep(
        event.venue_id,
        event.user_id,
        role=event.role.value,
        active=event.active,
        as_of=ctx.envelope.time,
    )
    if kept:  # deactivated, or another role: their sockets are judged again
        await membership_changed(ctx.store, event.venue_id, user_id=event.user_id)


for user_event in USER_EVENTS:
    subscriptions.on(user_event, name="users.copy")(keep_user)


# --- billing ----------------------------------------------------------------------------


def _when(event: PaymentEvent) -> str:
    return f"on {event.due_date.date().isoformat()}" if event.due_date else "soon"


@subscriptions.on(PaymentDue, name="system.payment_due")
async def payment_due(event: PaymentDue, ctx: EventContext) -> None:
    text = f"Payment of {event.amount} {event.currency} is due {_when(event)}."
    await _system(ctx, event.venue_id, event.project_id, text)


@subscriptions.on(PaymentOverdue, name="system.payment_overdue")
async def payment_overdue(event: PaymentOverdue, ctx: EventContext) -> None:
    text = f"Payment of {event.amount} {event.currency} is overdue."
    await _system(ctx, event.venue_id, event.project_id, text)


@subscriptions.on(PaymentPaid, name="system.payment_paid")
async def payment_paid(event: PaymentPaid, ctx: EventContext) -> None:
    text = f"Payment of {event.amount} {event.currency} received. Thank you!"
    await _system(ctx, event.venue_id, event.project_id, text)


def _document(event: DocumentEvent) -> str:
    return event.name


@subscriptions.on(DocumentCreated, name="system.document_ready")
async def document_ready(event: DocumentCreated, ctx: EventContext) -> None:
    text = f"Document ready to sign: {_document(event)}."
    await _system(ctx, event.venue_id, event.project_id, text)


@subscriptions.on(DocumentSigned, name="system.document_signed")
async def document_signed(event: DocumentSigned, ctx: EventContext) -> None:
    text = f"Document signed: {_document(event)}."
    await _system(ctx, event.venue_id, event.project_id, text)
