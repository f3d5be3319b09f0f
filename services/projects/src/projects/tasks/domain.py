"""A project's tasks: what must be done before the event, by whom, by when, in what order.

Pure: no I/O. Tasks live inside their project (see projects/domain.py): the project is
the one record a change of a task is saved with, which is how positions stay unique
and how concurrent moves never lose a task. Rules:

- a task has a title, a status (TODO, IN_PROGRESS, ON_HOLD, COMPLETED; any change is
  allowed, and reopening clears ``completedAt``), an optional assignee and due date;
- its position is its place in the project's list (0 first), unique by construction;
  a move places it just before or just after another task of the same project;
- a task made from a template is due a number of days before the event and follows the
  event when its date changes, until someone sets its due date by hand;
- an internal task is never shown to a client, and cannot be given to one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from gala.contracts.projects import TaskStatus
from gala.errors import Conflict, GalaError, InvalidInput, NotFound
from gala.values import UNSET, Unset, utc_millis

TITLE_MAX: Final = 200
DESCRIPTION_MAX: Final = 4000
NO_DUE_DATE: Final = datetime(9999, 12, 31, tzinfo=UTC)
"""Where tasks without a due date sort: after every dated one."""


class TaskError(GalaError):
    """Base of the tasks module's errors."""


class InvalidTask(TaskError, InvalidInput):
    pass


class TaskNotFound(TaskError, NotFound):
    def __init__(self) -> None:
        super().__init__("No such task in this venue.")


class TaskChangedConcurrently(TaskError, Conflict):
    def __init__(self) -> None:
        super().__init__("The project's tasks kept changing meanwhile; try again.")


def normalize_title(value: str) -> str:
    title = " ".join(value.split())
    if not title:
        raise InvalidTask("A task needs a title.")
    if len(title) > TITLE_MAX:
        raise InvalidTask(f"A title has at most {TITLE_MAX} characters.")
    return title


def normalize_description(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    if len(value) > DESCRIPTION_MAX:
        raise InvalidTask(f"A description has at most {DESCRIPTION_MAX} characters.")
    return value.strip()


def normalize_date(value: datetime | None) -> datetime | None:
    return None if value is None else utc_millis(value)


@dataclass
class Task:
    id: str
    title: str
    created_at: datetime
    updated_at: datetime
    status: TaskStatus = TaskStatus.TODO
    description: str | None = None
    assignee_id: str | None = None
    due_date: datetime | None = None
    is_internal: bool = False
    days_before: int | None = None
    """From a template: due this many days before the event, while not set by hand."""
    due_by_hand: bool = False
    completed_at: datetime | None = None

    @property
    def follows_event(self) -> bool:
        return self.days_before is not None and not self.due_by_hand


@dataclass(frozen=True)
class TaskPatch:
    """A change of a task; UNSET fields are left alone."""

    title: str | Unset = UNSET
    description: str | Unset | None = UNSET
    status: TaskStatus | Unset = UNSET
    assignee_id: str | Unset | None = UNSET
    due_date: datetime | Unset | None = UNSET
    is_internal: bool | Unset = UNSET

    @property
    def only_status(self) -> bool:
        return all(
            value is UNSET
            for value in (
                self.title,
                self.description,
                self.assignee_id,
                self.due_date,
                self.is_internal,
            )
        )


@dataclass(frozen=True)
class Placement:
    """Where a task goes: just before or just after another task (neither: at the end)."""

    before: str | None = None
    after: str | None = None

    def __post_init__(self) -> None:
        if self.before is not None and self.after is not None:
            raise InvalidTask("Place a task before another or after another, not both.")
