"""A venue's task templates: the tasks a new event project starts with, per event type.

Pure: no I/O. Rules:

- a template belongs to an event type (its key: the opportunity's event type, trimmed
  and upper-cased) and says how long such an event lasts and which tasks it needs, each
  due a number of days before the event (negative: after it);
- a venue that changed nothing has the built-in templates (wedding, conference, and
  ``DEFAULT`` for every other type); a venue's own template replaces the built-in one of
  its type, and removing it brings the built-in one back;
- an event type without a template of its own uses the venue's ``DEFAULT``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from gala.errors import Conflict, GalaError, InvalidInput

DEFAULT: Final = "DEFAULT"
KEY_MAX: Final = 100
TITLE_MAX: Final = 200
DESCRIPTION_MAX: Final = 4000
TASKS_MAX: Final = 100
DAYS_MIN: Final = -365
DAYS_MAX: Final = 730
HOURS_MAX: Final = 24 * 30


class TemplateError(GalaError):
    """Base of the templates module's errors."""


class InvalidTemplate(TemplateError, InvalidInput):
    pass


class TemplatesChangedConcurrently(TemplateError, Conflict):
    def __init__(self) -> None:
        super().__init__("The venue's templates kept changing meanwhile; try again.")


def template_key(event_type: str | None) -> str:
    """The template key of an event type; no type at all is ``DEFAULT``."""
    if event_type is None or not event_type.strip():
        return DEFAULT
    key = " ".join(event_type.split()).upper()
    if len(key) > KEY_MAX:
        raise InvalidTemplate(f"An event type has at most {KEY_MAX} characters.")
    return key


@dataclass(frozen=True)
class TaskTemplate:
    title: str
    days_before: int
    """Due this many days before the event starts (negative: after it)."""
    description: str | None = None
    is_internal: bool = False

    def checked(self) -> TaskTemplate:
        title = " ".join(self.title.split())
        if not title or len(title) > TITLE_MAX:
            raise InvalidTemplate(f"A task title has 1 to {TITLE_MAX} characters.")
        if not DAYS_MIN <= self.days_before <= DAYS_MAX:
            raise InvalidTemplate(f"daysBefore is from {DAYS_MIN} to {DAYS_MAX}.")
        description = self.description.strip() if self.description else None
        if description and len(description) > DESCRIPTION_MAX:
            raise InvalidTemplate(f"A description has at most {DESCRIPTION_MAX} characters.")
        return TaskTemplate(title, self.days_before, description or None, self.is_internal)


@dataclass(frozen=True)
class EventTemplate:
    event_type: str
    duration_hours: int
    tasks: tuple[TaskTemplate, ...]

    def checked(self) -> EventTemplate:
        key = template_key(self.event_type)
        if not 1 <= self.duration_hours <= HOURS_MAX:
            raise InvalidTemplate(f"durationHours is from 1 to {HOURS_MAX}.")
        if len(self.tasks) > TASKS_MAX:
            raise InvalidTemplate(f"A template has at most {TASKS_MAX} tasks.")
        return EventTemplate(key, self.duration_hours, tuple(t.checked() for t in self.tasks))


BUILT_IN: Final[Mapping[str, EventTemplate]] = {
    t.event_type: t
    for t in (
        EventTemplate(
            "WEDDING",
            12,
            (
                TaskTemplate("Menu tasting", 60, "Tasting with the couple: menu and wines."),
                TaskTemplate("Floor plan", 21, "Table layout and seating plan agreed."),
                TaskTemplate("Final headcount", 14, "Final number of guests, dietary needs."),
                TaskTemplate("Run sheet", 7, "The day minute by minute, for the team.", True),
                TaskTemplate("Staff and suppliers confirmed", 3, None, True),
            ),
        ),
        EventTemplate(
            "CONFERENCE",
            9,
            (
                TaskTemplate("Agenda and room layout", 30, "Sessions, rooms and their setup."),
                TaskTemplate("Audio-visual needs", 14, "Projectors, microphones, streaming."),
                TaskTemplate("Final attendee count", 7, "Badges and catering follow it."),
                TaskTemplate("Catering order", 5, None, True),
                TaskTemplate("Run sheet", 2, "The day hour by hour, for the team.", True),
            ),
        ),
        EventTemplate(
            DEFAULT,
            8,
            (
                TaskTemplate("Event details confirmed", 30, "Timings, rooms and services."),
                TaskTemplate("Final headcount", 10, "Final number of guests, dietary needs."),
                TaskTemplate("Run sheet", 3, "The day hour by hour, for the team.", True),
            ),
        ),
    )
}


@dataclass
class VenueTemplates:
    """A venue's own templates (overriding the built-in ones of their types)."""

    venue_id: str
    own: dict[str, EventTemplate] = field(default_factory=dict)
    version: int = 0
    """0: never stored."""
    updated_at: datetime | None = None

    def for_event(self, event_type: str | None) -> EventTemplate:
        """The template a project of ``event_type`` starts from."""
        try:
            key = template_key(event_type)
        except InvalidTemplate:
            key = DEFAULT
        for candidate in (key, DEFAULT):
            if candidate in self.own:
                return self.own[candidate]
            if candidate in BUILT_IN:
                return BUILT_IN[candidate]
        return BUILT_IN[DEFAULT]

    def effective(self) -> list[tuple[EventTemplate, bool]]:
        """Every template in force, by key, and whether it is the venue's own."""
        keys = sorted({*BUILT_IN, *self.own})
        return [
            (self.own[key], True) if key in self.own else (BUILT_IN[key], False) for key in keys
        ]

    def put(self, template: EventTemplate, now: datetime) -> EventTemplate:
        checked = template.checked()
        self.own[checked.event_type] = checked
        self.updated_at = now
        return checked

    def reset(self, event_type: str, now: datetime) -> bool:
        """Drop the venue's own template of a type; ``False`` if it had none."""
        if self.own.pop(template_key(event_type), None) is None:
            return False
        self.updated_at = now
        return True
