"""Use cases for a venue's task templates."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from gala.concurrency import save_attempts
from gala.identity import Principal, ensure_role
from gala.store import utc_now
from projects.roles import MANAGERS, TEAM
from projects.templates.domain import (
    EventTemplate,
    TemplatesChangedConcurrently,
    VenueTemplates,
    template_key,
)
from projects.templates.repository import TemplateRepository

Clock = Callable[[], datetime]


class TemplateService:
    def __init__(self, templates: TemplateRepository, clock: Clock = utc_now) -> None:
        self._templates = templates
        self._clock = clock

    async def all(self, principal: Principal) -> VenueTemplates:
        ensure_role(principal, TEAM, "see the task templates")
        return await self._templates.get(principal.venue_id)

    async def get(self, principal: Principal, event_type: str) -> tuple[EventTemplate, bool]:
        """The template a project of ``event_type`` starts from; whether it is the venue's."""
        ensure_role(principal, TEAM, "see the task templates")
        templates = await self._templates.get(principal.venue_id)
        template = templates.for_event(event_type)
        return template, template_key(event_type) in templates.own

    async def put(self, principal: Principal, template: EventTemplate) -> EventTemplate:
        ensure_role(principal, MANAGERS, "change the task templates")
        async for _ in save_attempts():
            templates = await self._templates.get(principal.venue_id)
            saved = templates.put(template, self._clock())
            if await self._templates.save(templates):
                return saved
        raise TemplatesChangedConcurrently()

    async def reset(self, principal: Principal, event_type: str) -> None:
        """Back to the built-in template of the type (or the venue's DEFAULT)."""
        ensure_role(principal, MANAGERS, "change the task templates")
        async for _ in save_attempts():
            templates = await self._templates.get(principal.venue_id)
            if not templates.reset(event_type, self._clock()):
                return
            if await self._templates.save(templates):
                return
        raise TemplatesChangedConcurrently()
