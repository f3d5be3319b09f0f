"""Events the projects service publishes.

Projects on ``gala.projects.project`` (subject: the project id) and their tasks on
``gala.projects.task`` (subject: the task id), with the venue in the envelope. Every
event carries the project or task as it is after the change, so a consumer (chat's
conversation members, a partner's calendar) keeps its own copy from any one event.
The client portal's link is a secret and is never published.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from gala.events.model import Event

PROJECT_TOPIC = "gala.projects.project"
TASK_TOPIC = "gala.projects.task"


class ProjectStatus(StrEnum):
    ACTIVE = "ACTIVE"
    ON_HOLD = "ON_HOLD"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"


class TaskStatus(StrEnum):
    TODO = "TODO"
    IN_PROGRESS = "IN_PROGRESS"
    ON_HOLD = "ON_HOLD"
    COMPLETED = "COMPLETED"


class ProjectEvent(Event):
    """What every project event carries: the project after the change."""

    project_id: str
    venue_id: str
    opportunity_id: str
    contact_id: str | None = None
    name: str
    status: ProjectStatus
    event_type: str | None = None
    start_date: datetime
    end_date: datetime
    client_ids: list[str] = Field(default_factory=list)
    """The venue's CLIENT users who belong to the project (they see it and its chat)."""


class ProjectCreated(ProjectEvent, type="gala.project.created.v1", topic=PROJECT_TOPIC):
    """A won opportunity became an event project (with its template tasks)."""


class ProjectUpdated(ProjectEvent, type="gala.project.updated.v1", topic=PROJECT_TOPIC):
    """Its name, dates (e.g. the event moved) or client users changed."""


class ProjectStatusChanged(
    ProjectEvent, type="gala.project.status_changed.v1", topic=PROJECT_TOPIC
):
    """It was put on hold, resumed, completed or cancelled."""

    previous_status: ProjectStatus


PROJECT_EVENTS: tuple[type[ProjectEvent], ...] = (
    ProjectCreated,
    ProjectUpdated,
    ProjectStatusChanged,
)


class TaskEvent(Event):
    """What every task event carries: the task after the change."""

    task_id: str
    project_id: str
    venue_id: str
    title: str
    status: TaskStatus
    assignee_id: str | None = None
    due_date: datetime | None = None
    is_internal: bool = False
    position: int


class TaskCreated(TaskEvent, type="gala.task.created.v1", topic=TASK_TOPIC):
    """A task was added to a project (by hand or from the venue's template)."""


class TaskUpdated(TaskEvent, type="gala.task.updated.v1", topic=TASK_TOPIC):
    """Its title, description, due date or visibility changed."""


class TaskAssigned(TaskEvent, type="gala.task.assigned.v1", topic=TASK_TOPIC):
    """It was given to someone else (``assignee_id``; None: to nobody)."""

    previous_assignee_id: str | None = None


class TaskStatusChanged(TaskEvent, type="gala.task.status_changed.v1", topic=TASK_TOPIC):
    """Its status changed (``previous_status`` is where it was)."""

    previous_status: TaskStatus


class TaskCompleted(TaskEvent, type="gala.task.completed.v1", topic=TASK_TOPIC):
    """It was completed (follows its status change)."""

    completed_at: datetime


class TaskMoved(TaskEvent, type="gala.task.moved.v1", topic=TASK_TOPIC):
    """It was placed elsewhere in its project's list (the others keep their order)."""

    previous_position: int


class TaskDeleted(TaskEvent, type="gala.task.deleted.v1", topic=TASK_TOPIC):
    """It was removed from its project (carries it as it was)."""


TASK_EVENTS: tuple[type[TaskEvent], ...] = (
    TaskCreated,
    TaskUpdated,
    TaskAssigned,
    TaskStatusChanged,
    TaskCompleted,
    TaskMoved,
    TaskDeleted,
)
