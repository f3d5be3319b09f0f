"""The client portal: a project's summary behind its unguessable client link.

Public (the gateway lets it through without a login): the link is the credential. A
wrong or rotated link is 404, and the answer holds nothing internal.
"""

from __future__ import annotations

from fastapi import APIRouter

from gala.api import problems
from projects.portal.schemas import PortalOut
from projects.projects.api import Projects
from projects.projects.domain import ProjectNotFound

router = APIRouter(prefix="/api/v1/portal", tags=["portal"])


@router.get("/{client_link}", responses=problems(ProjectNotFound))
async def portal(projects: Projects, client_link: str) -> PortalOut:
    """The project's summary and its client-visible tasks."""
    return PortalOut.of(await projects.portal(client_link))
