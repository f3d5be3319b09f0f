"""The tasks API's bodies (camelCase JSON, ids as ``id``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, model_validator

from gala.api import RequestBody, ResponseBody
from gala.contracts.projects import TaskStatus
from gala.values import UNSET
from projects.tasks.domain import DESCRIPTION_MAX, TITLE_MAX, Placement, TaskPatch
from projects.tasks.repository import ProjectTask

Id = Annotated[str, Field(min_length=1, max_length=200)]
Title = Annotated[str, Field(min_length=1, max_length=TITLE_MAX, examples=["Menu tasting"])]
Description = Annotated[str, Field(max_length=DESCRIPTION_MAX)]


class PlacementIn(RequestBody):
    before: Id | None = None
    """Place it just before this task."""
    after: Id | None = None
    """Place it just after this task."""

    @model_validator(mode="after")
    def _one_side(self) -> PlacementIn:
        if self.before is not None and self.after is not None:
            raise ValueError("send before or after, not both")
        return self

    def placement(self) -> Placement:
        return Placement(self.before, self.after)


class CreateTaskIn(PlacementIn):
    """A new task, at the end of the list unless ``before`` or ``after`` places it."""

    title: Title
    description: Description | None = None
    status: TaskStatus = TaskStatus.TODO
    assignee_id: Id | None = None
    due_date: datetime | None = None
    is_internal: bool = False

    def fields(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "description": self.description,
            "status": self.status,
            "assignee_id": self.assignee_id,
            "due_date": self.due_date,
            "is_internal": self.is_internal,
        }


class MoveTaskIn(PlacementIn):
    @model_validator(mode="after")
    def _a_side(self) -> MoveTaskIn:
        if self.before is None and self.after is None:
            raise ValueError("send before or after: the task to place it next to")
        return self


class UpdateTaskIn(RequestBody):
    """Only the fields sent change; ``null`` clears an optional one. Setting ``dueDate``
    pins it: it no longer follows the event's date."""

    title: Title | None = None
    description: Description | None = None
    status: TaskStatus | None = None
    assignee_id: Id | None = None
    due_date: datetime | None = None
    is_internal: bool | None = None

    def patch(self) -> TaskPatch:
        sent = self.model_fields_set
        for required in ("title", "status", "is_internal"):
            if required in sent and getattr(self, required) is None:
                raise ValueError(f"{required} cannot be removed")

        def given(name: str) -> Any:
            return getattr(self, name) if name in sent else UNSET

        return TaskPatch(
            title=given("title"),
            description=given("description"),
            status=given("status"),
            assignee_id=given("assignee_id"),
            due_date=given("due_date"),
            is_internal=given("is_internal"),
        )


class TaskOut(ResponseBody):
    """A task as the venue's team sees it."""

    id: str
    project_id: str
    title: str
    description: str | None
    status: TaskStatus
    assignee_id: str | None
    due_date: datetime | None
    due_follows_event: bool
    """Made from a template and not re-dated by hand: moves with the event's date."""
    is_internal: bool
    position: int
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, item: ProjectTask) -> TaskOut:
        t = item.task
        return cls(
            id=t.id,
            project_id=item.project_id,
            title=t.title,
            description=t.description,
            status=t.status,
            assignee_id=t.assignee_id,
            due_date=t.due_date,
            due_follows_event=t.follows_event,
            is_internal=t.is_internal,
            position=item.position,
            completed_at=t.completed_at,
            created_at=t.created_at,
            updated_at=t.updated_at,
        )


class ClientTaskOut(ResponseBody):
    """A task as a client sees it (its list shows them in order): no internal field."""

    id: str
    project_id: str
    title: str
    description: str | None
    status: TaskStatus
    due_date: datetime | None
    completed_at: datetime | None

    @classmethod
    def of(cls, item: ProjectTask) -> ClientTaskOut:
        t = item.task
        return cls(
            id=t.id,
            project_id=item.project_id,
            title=t.title,
            description=t.description,
            status=t.status,
            due_date=t.due_date,
            completed_at=t.completed_at,
        )
