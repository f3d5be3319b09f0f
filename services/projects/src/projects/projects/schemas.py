"""The projects API's bodies (camelCase JSON, ids as ``id``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field

from gala.api import RequestBody, ResponseBody
from gala.contracts.projects import ProjectStatus
from gala.values import UNSET
from projects.projects.domain import NAME_MAX, Project, ProjectPatch

Id = Annotated[str, Field(min_length=1, max_length=200)]


class UpdateProjectIn(RequestBody):
    """Only the fields sent change; ``status`` moves it (ACTIVE <-> ON_HOLD, then
    COMPLETED or CANCELLED)."""

    name: Annotated[str | None, Field(min_length=1, max_length=NAME_MAX)] = None
    status: ProjectStatus | None = None
    start_date: datetime | None = None
    end_date: datetime | None = None
    settings: dict[str, Any] | None = None
    client_ids: Annotated[list[Id] | None, Field(max_length=50)] = None

    def patch(self) -> ProjectPatch:
        sent = self.model_fields_set
        for required in ("name", "status", "start_date", "end_date", "client_ids"):
            if required in sent and getattr(self, required) is None:
                raise ValueError(f"{required} cannot be removed")
        return ProjectPatch(
            name=self.name if self.name is not None else UNSET,
            start_date=self.start_date if self.start_date is not None else UNSET,
            end_date=self.end_date if self.end_date is not None else UNSET,
            settings=self.settings if "settings" in sent else UNSET,
            client_ids=self.client_ids if self.client_ids is not None else UNSET,
        )


class TeamProjectOut(ResponseBody):
    """A project as SALES and STAFF see it: every field but the client link."""

    id: str
    venue_id: str
    name: str
    opportunity_id: str
    contact_id: str | None
    status: ProjectStatus
    event_type: str | None
    start_date: datetime
    end_date: datetime
    client_ids: list[str]
    settings: dict[str, Any] | None
    task_count: int
    open_task_count: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, p: Project) -> TeamProjectOut:
        return cls(**_team_fields(p))


class ProjectOut(TeamProjectOut):
    """A project as its managers (ADMIN, PROJECT_MANAGER) see it: with the client link,
    which opens the client portal without a login."""

    client_link: str

    @classmethod
    def of(cls, p: Project) -> ProjectOut:
        return cls(**_team_fields(p), client_link=p.client_link)


def _team_fields(p: Project) -> dict[str, Any]:
    return {
        "id": p.id,
        "venue_id": p.venue_id,
        "name": p.name,
        "opportunity_id": p.opportunity_id,
        "contact_id": p.contact_id,
        "status": p.status,
        "event_type": p.event_type,
        "start_date": p.start_date,
        "end_date": p.end_date,
        "client_ids": list(p.client_ids),
        "settings": p.settings,
        "task_count": len(p.tasks),
        "open_task_count": sum(1 for t in p.tasks if t.completed_at is None),
        "created_at": p.created_at,
        "updated_at": p.updated_at,
    }


class ClientProjectOut(ResponseBody):
    """A project as its client sees it: no internal field."""

    id: str
    name: str
    status: ProjectStatus
    event_type: str | None
    start_date: datetime
    end_date: datetime

    @classmethod
    def of(cls, p: Project) -> ClientProjectOut:
        return cls(
            id=p.id,
            name=p.name,
            status=p.status,
            event_type=p.event_type,
            start_date=p.start_date,
            end_date=p.end_date,
        )
