"""HTTP entry points for the venue's task templates (per event type)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, status

from gala.api import problems
from gala.app import StoreDep
from gala.errors import Forbidden
from gala.identity import CurrentPrincipal
from projects.templates.domain import KEY_MAX, InvalidTemplate, TemplatesChangedConcurrently
from projects.templates.repository import TemplateRepository
from projects.templates.schemas import TemplateIn, TemplateOut, TemplatesOut
from projects.templates.service import TemplateService

PREFIX = "/api/v1/projects/templates"


async def template_service(store: StoreDep) -> TemplateService:
    return TemplateService(TemplateRepository(store))


Templates = Annotated[TemplateService, Depends(template_service)]
EventType = Annotated[str, Path(min_length=1, max_length=KEY_MAX, examples=["WEDDING"])]
router = APIRouter(prefix=PREFIX, tags=["templates"])


@router.get("", responses=problems(Forbidden))
async def list_templates(principal: CurrentPrincipal, templates: Templates) -> TemplatesOut:
    """Every template in force: the built-in ones and the venue's own (``custom``).
    ``DEFAULT`` serves every event type without a template of its own."""
    venue = await templates.all(principal)
    return TemplatesOut(items=[TemplateOut.of(t, custom) for t, custom in venue.effective()])


@router.get("/{event_type}", responses=problems(Forbidden, InvalidTemplate))
async def get_template(
    principal: CurrentPrincipal, templates: Templates, event_type: EventType
) -> TemplateOut:
    """The template a new project of this event type would start from."""
    template, custom = await templates.get(principal, event_type)
    return TemplateOut.of(template, custom)


@router.put(
    "/{event_type}",
    responses=problems(Forbidden, InvalidTemplate, TemplatesChangedConcurrently),
)
async def put_template(
    principal: CurrentPrincipal, templates: Templates, event_type: EventType, body: TemplateIn
) -> TemplateOut:
    """Set the venue's own template for an event type (ADMIN, PROJECT_MANAGER). Projects
    created from now on start from it; existing projects keep their tasks."""
    return TemplateOut.of(await templates.put(principal, body.template(event_type)), True)


@router.delete(
    "/{event_type}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(Forbidden, InvalidTemplate, TemplatesChangedConcurrently),
)
async def reset_template(
    principal: CurrentPrincipal, templates: Templates, event_type: EventType
) -> None:
    """Drop the venue's own template of the type: the built-in one (or DEFAULT) is back."""
    await templates.reset(principal, event_type)
