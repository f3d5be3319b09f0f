"""Tasks across a venue's projects (``GET /api/v1/tasks``): the one query that reads
tasks outside their project, straight from the project documents they live in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from gala.contracts.projects import ProjectStatus, TaskStatus
from gala.identity import venue_scoped
from gala.store import Document, Store, aggregate_page
from projects.projects.repository import COLLECTION, task_from
from projects.tasks.domain import Task

SORT: Final[Sequence[tuple[str, int]]] = [("tasks.dueSort", 1), ("tasks.id", 1)]
UPCOMING: Final = timedelta(days=7)
OPEN_PROJECTS: Final = [ProjectStatus.ACTIVE.value, ProjectStatus.ON_HOLD.value]


class Due(StrEnum):
    OVERDUE = "overdue"
    """Past its due date and not completed."""
    UPCOMING = "upcoming"
    """Due within the next 7 days and not completed."""


@dataclass(frozen=True)
class TaskFilter:
    assignee_id: str | None = None
    due: Due | None = None
    status: TaskStatus | None = None
    project_id: str | None = None
    client_id: str | None = None
    """Only client-visible tasks of the projects this CLIENT user belongs to."""
    member_id: str | None = None
    """Only tasks of the projects with a task assigned to this user (what a STAFF user
    sees), whoever each task is assigned to."""

    def pipeline(self, venue_id: str, now: datetime) -> list[Document]:
        project: Document = venue_scoped(venue_id, {"status": {"$in": OPEN_PROJECTS}})
        task: Document = {}
        if self.project_id is not None:
            project["_id"] = self.project_id
        if self.client_id is not None:
            project["clientIds"] = self.client_id
            task["tasks.isInternal"] = False
        if self.assignee_id is not None:
            project["tasks.assigneeId"] = self.assignee_id
            task["tasks.assigneeId"] = self.assignee_id
        if self.member_id is not None:
            project["$and"] = [{"tasks.assigneeId": self.member_id}]
        if self.status is not None:
            task["tasks.status"] = self.status.value
        if self.due is not None:
            if self.status is None:
                task["tasks.status"] = {"$ne": TaskStatus.COMPLETED.value}
            window = (
                {"$lt": now} if self.due is Due.OVERDUE else {"$gte": now, "$lt": now + UPCOMING}
            )
            task["tasks.dueSort"] = window
        return [
            {"$match": project},
            {"$project": {"tasks": 1}},
            {"$unwind": "$tasks"},
            *([{"$match": task}] if task else []),
        ]


@dataclass(frozen=True)
class ProjectTask:
    project_id: str
    task: Task
    position: int


class TaskRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def page(
        self, venue_id: str, where: TaskFilter, now: datetime, limit: int, cursor: str | None
    ) -> tuple[list[ProjectTask], str | None]:
        """Tasks by due date (undated last), then id."""
        page = await aggregate_page(
            self._store[COLLECTION], where.pipeline(venue_id, now), SORT, limit, cursor
        )
        items = [
            ProjectTask(d["_id"], task_from(d["tasks"]), int(d["tasks"]["position"]))
            for d in page.items
        ]
        return items, page.next_cursor
