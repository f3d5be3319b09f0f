"""HTTP entry points for projects: thin translations to the use cases."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from gala.api import Cursor, Limit, PageOut, problems
from gala.app import OutboxDep, StoreDep
from gala.contracts.projects import ProjectStatus
from gala.errors import Forbidden, InvalidInput
from gala.identity import CurrentPrincipal, Principal, Role
from projects.people.domain import UnknownClient
from projects.people.repository import PeopleRepository
from projects.people.service import People
from projects.projects.domain import (
    InvalidProject,
    InvalidTransition,
    Project,
    ProjectChangedConcurrently,
    ProjectClosed,
    ProjectNotFound,
)
from projects.projects.repository import ProjectFilter, ProjectRepository
from projects.projects.schemas import (
    ClientProjectOut,
    ProjectOut,
    TeamProjectOut,
    UpdateProjectIn,
)
from projects.projects.service import ProjectService
from projects.roles import MANAGERS
from projects.templates.repository import TemplateRepository

PREFIX = "/api/v1/projects"


async def project_service(store: StoreDep, outbox: OutboxDep) -> ProjectService:
    return ProjectService(
        ProjectRepository(store, outbox), TemplateRepository(store), People(PeopleRepository(store))
    )


Projects = Annotated[ProjectService, Depends(project_service)]


async def project_filter(
    status: ProjectStatus | None = None,
    opportunity_id: Annotated[str | None, Query(alias="opportunityId", max_length=200)] = None,
    start_from: Annotated[
        datetime | None, Query(alias="startFrom", description="Starts at or after (inclusive)")
    ] = None,
    start_to: Annotated[
        datetime | None, Query(alias="startTo", description="Starts before (exclusive)")
    ] = None,
) -> ProjectFilter:
    return ProjectFilter(status, opportunity_id, start_from, start_to)


Filter = Annotated[ProjectFilter, Depends(project_filter)]
router = APIRouter(prefix=PREFIX, tags=["projects"])


Shown = ProjectOut | TeamProjectOut | ClientProjectOut


def shown(principal: Principal, project: Project) -> Shown:
    """Only ADMIN and PROJECT_MANAGER see the client link; a client sees no internal
    field."""
    if principal.role in MANAGERS:
        return ProjectOut.of(project)
    if principal.role is Role.CLIENT:
        return ClientProjectOut.of(project)
    return TeamProjectOut.of(project)


@router.get("", responses=problems(Forbidden, InvalidInput))
async def list_projects(
    principal: CurrentPrincipal,
    projects: Projects,
    where: Filter,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> PageOut[ProjectOut] | PageOut[TeamProjectOut] | PageOut[ClientProjectOut]:
    """The venue's projects by start date, filtered, a page at a time: a STAFF user's
    only those with a task assigned to them, a CLIENT's only theirs. The client link
    only for ADMIN and PROJECT_MANAGER."""
    items, next_cursor = await projects.page(principal, where, limit, cursor)
    if principal.role in MANAGERS:
        return PageOut[ProjectOut](items=[ProjectOut.of(p) for p in items], next_cursor=next_cursor)
    if principal.role is Role.CLIENT:
        return PageOut[ClientProjectOut](
            items=[ClientProjectOut.of(p) for p in items], next_cursor=next_cursor
        )
    return PageOut[TeamProjectOut](
        items=[TeamProjectOut.of(p) for p in items], next_cursor=next_cursor
    )


@router.get("/{project_id}", responses=problems(Forbidden, ProjectNotFound))
async def get_project(principal: CurrentPrincipal, projects: Projects, project_id: str) -> Shown:
    """A project the caller may see (any other is 404)."""
    return shown(principal, await projects.get(principal, project_id))


@router.patch(
    "/{project_id}",
    responses=problems(
        Forbidden,
        ProjectNotFound,
        InvalidProject,
        UnknownClient,
        ProjectClosed,
        InvalidTransition,
        ProjectChangedConcurrently,
    ),
)
async def update_project(
    principal: CurrentPrincipal, projects: Projects, project_id: str, body: UpdateProjectIn
) -> ProjectOut:
    """Change details or the status (ADMIN, PROJECT_MANAGER; anyone else: 403, or 404 for
    a project they may not see). ``clientIds`` are CLIENT users of the venue; a COMPLETED
    or CANCELLED project changes no more."""
    try:
        patch = body.patch()
    except ValueError as exc:
        raise InvalidProject(str(exc)) from exc
    return ProjectOut.of(await projects.update(principal, project_id, patch, body.status))


@router.post(
    "/{project_id}/client-link/rotate",
    responses=problems(Forbidden, ProjectNotFound, ProjectChangedConcurrently),
)
async def rotate_client_link(
    principal: CurrentPrincipal, projects: Projects, project_id: str
) -> ProjectOut:
    """A new client link (ADMIN, PROJECT_MANAGER: the only ones who see it); the old one
    answers 404 from now on."""
    return ProjectOut.of(await projects.rotate_client_link(principal, project_id))
