"""The client portal's body: what a client link shows, and nothing internal."""

from __future__ import annotations

from datetime import datetime

from gala.api import ResponseBody
from gala.contracts.projects import ProjectStatus, TaskStatus
from projects.projects.domain import Project


class PortalTaskOut(ResponseBody):
    title: str
    description: str | None
    status: TaskStatus
    due_date: datetime | None
    completed_at: datetime | None


class PortalOut(ResponseBody):
    name: str
    status: ProjectStatus
    event_type: str | None
    start_date: datetime
    end_date: datetime
    tasks: list[PortalTaskOut]
    """The client-visible tasks, in order."""

    @classmethod
    def of(cls, p: Project) -> PortalOut:
        return cls(
            name=p.name,
            status=p.status,
            event_type=p.event_type,
            start_date=p.start_date,
            end_date=p.end_date,
            tasks=[
                PortalTaskOut(
                    title=t.title,
                    description=t.description,
                    status=t.status,
                    due_date=t.due_date,
                    completed_at=t.completed_at,
                )
                for t in p.visible_tasks()
            ],
        )
