"""The templates API's bodies (camelCase JSON)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from gala.api import RequestBody, ResponseBody
from projects.templates.domain import (
    DAYS_MAX,
    DAYS_MIN,
    DESCRIPTION_MAX,
    HOURS_MAX,
    TASKS_MAX,
    TITLE_MAX,
    EventTemplate,
    TaskTemplate,
)


class TaskTemplateBody(RequestBody):
    title: Annotated[str, Field(min_length=1, max_length=TITLE_MAX, examples=["Menu tasting"])]
    days_before: Annotated[
        int,
        Field(ge=DAYS_MIN, le=DAYS_MAX, description="Due this many days before the event"),
    ]
    description: Annotated[str | None, Field(max_length=DESCRIPTION_MAX)] = None
    is_internal: bool = False


class TemplateIn(RequestBody):
    duration_hours: Annotated[int, Field(ge=1, le=HOURS_MAX, examples=[12])]
    tasks: Annotated[list[TaskTemplateBody], Field(max_length=TASKS_MAX)]

    def template(self, event_type: str) -> EventTemplate:
        return EventTemplate(
            event_type,
            self.duration_hours,
            tuple(
                TaskTemplate(t.title, t.days_before, t.description, t.is_internal)
                for t in self.tasks
            ),
        )


class TaskTemplateOut(ResponseBody):
    title: str
    days_before: int
    description: str | None
    is_internal: bool


class TemplateOut(ResponseBody):
    event_type: str
    duration_hours: int
    tasks: list[TaskTemplateOut]
    custom: bool
    """The venue's own template (``False``: the built-in one)."""

    @classmethod
    def of(cls, template: EventTemplate, custom: bool) -> TemplateOut:
        return cls(
            event_type=template.event_type,
            duration_hours=template.duration_hours,
            tasks=[
                TaskTemplateOut(
                    title=t.title,
                    days_before=t.days_before,
                    description=t.description,
                    is_internal=t.is_internal,
                )
                for t in template.tasks
            ],
            custom=custom,
        )


class TemplatesOut(ResponseBody):
    items: list[TemplateOut]
