"""An event project: what a won opportunity becomes, with the tasks that prepare it.

Pure: no I/O. The project is the aggregate its tasks live in: every change, of the
project or of one of its tasks, is one version-checked save of one record, with the
events it causes (recorded in ``pending_events``). Rules:

- a project is made once per won opportunity (its id derives from the opportunity's):
  named after it, starting at the event date and lasting as the event type's template
  says, ACTIVE, with an unguessable client link (256 random bits) and the template's
  tasks, each due its number of days before the event;
- status moves ACTIVE <-> ON_HOLD, and from either to COMPLETED or CANCELLED, which
  are final; a final project's details and tasks change no more;
- when the opportunity's event date changes, the project's dates move by as much and
  template tasks nobody re-dated by hand follow; an older change arriving late is
  ignored (each change carries the time it happened);
- a project's CLIENT users see it in the portal and in chat; they are found by e-mail
  address (the contact's) and may be set by hand;
- the venue's STAFF users see a project while one of its tasks is assigned to them;
- at most ``TASKS_MAX`` tasks per project.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from gala.contracts.projects import (
    ProjectCreated,
    ProjectEvent,
    ProjectStatus,
    ProjectStatusChanged,
    ProjectUpdated,
    TaskAssigned,
    TaskCompleted,
    TaskCreated,
    TaskDeleted,
    TaskEvent,
    TaskMoved,
    TaskStatus,
    TaskStatusChanged,
    TaskUpdated,
)
from gala.errors import Conflict, GalaError, InvalidInput, NotFound
from gala.events.model import Event
from gala.values import UNSET, Unset, json_object
from projects.tasks.domain import (
    InvalidTask,
    Placement,
    Task,
    TaskNotFound,
    TaskPatch,
    normalize_date,
    normalize_description,
    normalize_title,
)
from projects.templates.domain import EventTemplate

NAME_MAX: Final = 200
TASKS_MAX: Final = 500
SETTINGS_MAX_BYTES: Final = 16_384
PROJECT_ID_NAMESPACE: Final = uuid.UUID("0d5bd8f4-8a53-4b8e-9d0b-2c6f6b7e1a44")
TRANSITIONS: Final = {
    ProjectStatus.ACTIVE: {ProjectStatus.ON_HOLD, ProjectStatus.COMPLETED, ProjectStatus.CANCELLED},
    ProjectStatus.ON_HOLD: {ProjectStatus.ACTIVE, ProjectStatus.COMPLETED, ProjectStatus.CANCELLED},
    ProjectStatus.COMPLETED: set(),
    ProjectStatus.CANCELLED: set(),
}


class ProjectError(GalaError):
    """Base of the projects module's errors."""


class InvalidProject(ProjectError, InvalidInput):
    pass


class ProjectNotFound(ProjectError, NotFound):
    def __init__(self) -> None:
        super().__init__("No such project in this venue.")


class ProjectClosed(ProjectError, Conflict):
    def __init__(self, status: ProjectStatus) -> None:
        super().__init__(
            f"The project is {status.value}: it changes no more.", projectStatus=status
        )


class InvalidTransition(ProjectError, Conflict):
    def __init__(self, current: ProjectStatus, wanted: ProjectStatus) -> None:
        super().__init__(
            f"A project cannot go from {current.value} to {wanted.value}.",
            projectStatus=current,
            allowed=sorted(s.value for s in TRANSITIONS[current]),
        )


class ProjectChangedConcurrently(ProjectError, Conflict):
    def __init__(self) -> None:
        super().__init__("The project kept changing while this change was applied; retry.")


def project_id_for(opportunity_id: str) -> str:
    """The id of a won opportunity's project: the same however often it is won."""
    return str(uuid.uuid5(PROJECT_ID_NAMESPACE, opportunity_id))


def new_client_link() -> str:
    return secrets.token_urlsafe(32)


def normalize_name(value: str) -> str:
    name = " ".join(value.split())
    if not name:
        raise InvalidProject("A project needs a name.")
    return name[:NAME_MAX]


def _moment(value: datetime) -> datetime:
    moment = normalize_date(value)
    assert moment is not None
    return moment


def check_settings(value: Any) -> dict[str, Any] | None:
    try:
        return json_object(value, "settings", SETTINGS_MAX_BYTES)
    except InvalidInput as exc:
        raise InvalidProject(exc.detail) from None


@dataclass(frozen=True)
class Won:
    """What a won opportunity tells the project it becomes."""

    venue_id: str
    opportunity_id: str
    contact_id: str | None
    name: str
    event_type: str | None
    event_date: datetime
    as_of: datetime


@dataclass(frozen=True)
class ProjectPatch:
    """A change of details; UNSET fields are left alone."""

    name: str | Unset = UNSET
    start_date: datetime | Unset = UNSET
    end_date: datetime | Unset = UNSET
    settings: dict[str, Any] | Unset | None = UNSET
    client_ids: list[str] | Unset = UNSET

    @property
    def is_empty(self) -> bool:
        return all(
            isinstance(value, Unset)
            for value in (self.name, self.start_date, self.end_date, self.settings, self.client_ids)
        )


@dataclass
class Project:
    id: str
    venue_id: str
    opportunity_id: str
    name: str
    status: ProjectStatus
    event_date: datetime
    """The opportunity's event date the project's dates were last set from."""
    start_date: datetime
    end_date: datetime
    client_link: str
    created_at: datetime
    updated_at: datetime
    opportunity_as_of: datetime
    """When the opportunity change the project last followed happened."""
    contact_id: str | None = None
    event_type: str | None = None
    client_ids: list[str] = field(default_factory=list)
    settings: dict[str, Any] | None = None
    tasks: list[Task] = field(default_factory=list)
    version: int = 1
    pending_events: list[Event] = field(default_factory=list)

    # --- creation ---------------------------------------------------------------------

    @classmethod
    def from_won(
        cls, won: Won, template: EventTemplate, client_ids: list[str], now: datetime
    ) -> Project:
        event_date = normalize_date(won.event_date)
        assert event_date is not None
        project = cls(
            id=project_id_for(won.opportunity_id),
            venue_id=won.venue_id,
            opportunity_id=won.opportunity_id,
            contact_id=won.contact_id,
            name=normalize_name(won.name),
            status=ProjectStatus.ACTIVE,
            event_type=won.event_type,
            event_date=event_date,
            start_date=event_date,
            end_date=event_date + timedelta(hours=template.duration_hours),
            client_link=new_client_link(),
            client_ids=sorted(set(client_ids)),
            created_at=now,
            updated_at=now,
            opportunity_as_of=won.as_of,
        )
        project._record(ProjectCreated)
        for item in template.tasks:
            task = Task(
                id=str(uuid.uuid4()),
                title=item.title,
                description=item.description,
                is_internal=item.is_internal,
                days_before=item.days_before,
                due_date=event_date - timedelta(days=item.days_before),
                created_at=now,
                updated_at=now,
            )
            project.tasks.append(task)
            project._record_task(TaskCreated, task)
        return project

    # --- the project ------------------------------------------------------------------

    @property
    def is_closed(self) -> bool:
        return not TRANSITIONS[self.status]

    def ensure_open(self) -> None:
        if self.is_closed:
            raise ProjectClosed(self.status)

    def change(self, patch: ProjectPatch, now: datetime) -> bool:
        """Change details; ``False`` when nothing changed."""
        if patch.is_empty:
            return False
        self.ensure_open()
        name = self.name if isinstance(patch.name, Unset) else normalize_name(patch.name)
        start = _moment(
            self.start_date if isinstance(patch.start_date, Unset) else patch.start_date
        )
        end = _moment(self.end_date if isinstance(patch.end_date, Unset) else patch.end_date)
        if end < start:
            raise InvalidProject("A project cannot end before it starts.")
        settings = (
            self.settings if isinstance(patch.settings, Unset) else check_settings(patch.settings)
        )
        clients = (
            self.client_ids
            if isinstance(patch.client_ids, Unset)
            else sorted(set(patch.client_ids))
        )
        if (name, start, end, settings, clients) == (
            self.name,
            self.start_date,
            self.end_date,
            self.settings,
            self.client_ids,
        ):
            return False
        public = (name, start, end, clients) != (
            self.name,
            self.start_date,
            self.end_date,
            self.client_ids,
        )
        self.name, self.start_date, self.end_date = name, start, end
        self.settings, self.client_ids = settings, clients
        self.updated_at = now
        if public:
            self._record(ProjectUpdated)
        return True

    def move_to(self, status: ProjectStatus, now: datetime) -> bool:
        if status == self.status:
            return False
        if status not in TRANSITIONS[self.status]:
            raise InvalidTransition(self.status, status)
        previous = self.status
        self.status = status
        self.updated_at = now
        self._record(ProjectStatusChanged, previous_status=previous)
        return True

    def rotate_client_link(self, now: datetime) -> None:
        """A new link; the old one stops working (no event: the link is a secret)."""
        self.client_link = new_client_link()
        self.updated_at = now

    def add_clients(self, user_ids: list[str], now: datetime) -> bool:
        missing = sorted(set(user_ids) - set(self.client_ids))
        if not missing or self.is_closed:
            return False
        self.client_ids = sorted({*self.client_ids, *missing})
        self.updated_at = now
        self._record(ProjectUpdated)
        return True

    def follow_event_date(
        self, event_date: datetime | None, as_of: datetime, now: datetime
    ) -> bool:
        """The opportunity's event date as of ``as_of``; ``False`` when nothing changed."""
        if as_of <= self.opportunity_as_of:
            return False  # an older change, arriving late
        self.opportunity_as_of = as_of
        moved = normalize_date(event_date)
        if moved is None or moved == self.event_date or self.is_closed:
            return True
        delta = moved - self.event_date
        self.event_date = moved
        self.start_date += delta
        self.end_date += delta
        self.updated_at = now
        self._record(ProjectUpdated)
        for task in self.tasks:
            if task.follows_event:
                assert task.days_before is not None
                task.due_date = moved - timedelta(days=task.days_before)
                task.updated_at = now
                self._record_task(TaskUpdated, task)
        return True

    # --- its tasks --------------------------------------------------------------------

    def task(self, task_id: str) -> Task:
        for task in self.tasks:
            if task.id == task_id:
                return task
        raise TaskNotFound()

    def position(self, task_id: str) -> int:
        for index, task in enumerate(self.tasks):
            if task.id == task_id:
                return index
        raise TaskNotFound()

    def is_assigned(self, user_id: str) -> bool:
        """Whether one of its tasks is assigned to ``user_id`` (a STAFF user sees only
        such projects)."""
        return any(task.assignee_id == user_id for task in self.tasks)

    def visible_tasks(self) -> list[Task]:
        """What a client sees: every task but the internal ones."""
        return [task for task in self.tasks if not task.is_internal]

    def add_task(
        self,
        *,
        title: str,
        now: datetime,
        description: str | None = None,
        status: TaskStatus = TaskStatus.TODO,
        assignee_id: str | None = None,
        due_date: datetime | None = None,
        is_internal: bool = False,
        placement: Placement | None = None,
    ) -> Task:
        self.ensure_open()
        if len(self.tasks) >= TASKS_MAX:
            raise InvalidTask(f"A project has at most {TASKS_MAX} tasks.")
        task = Task(
            id=str(uuid.uuid4()),
            title=normalize_title(title),
            description=normalize_description(description),
            status=status,
            assignee_id=assignee_id,
            due_date=normalize_date(due_date),
            is_internal=is_internal,
            completed_at=now if status is TaskStatus.COMPLETED else None,
            created_at=now,
            updated_at=now,
        )
        self.tasks.insert(self._index_for(placement or Placement()), task)
        self.updated_at = now
        self._record_task(TaskCreated, task)
        return task

    def change_task(self, task_id: str, patch: TaskPatch, now: datetime) -> Task:
        self.ensure_open()
        task = self.task(task_id)
        details = False
        if not isinstance(patch.title, Unset):
            title = normalize_title(patch.title)
            details |= title != task.title
            task.title = title
        if not isinstance(patch.description, Unset):
            description = normalize_description(patch.description)
            details |= description != task.description
            task.description = description
        if not isinstance(patch.due_date, Unset):
            due = normalize_date(patch.due_date)
            details |= due != task.due_date
            task.due_date, task.due_by_hand = due, True
        if not isinstance(patch.is_internal, Unset):
            details |= patch.is_internal != task.is_internal
            task.is_internal = patch.is_internal
        previous_assignee = task.assignee_id
        if not isinstance(patch.assignee_id, Unset):
            task.assignee_id = patch.assignee_id
        previous_status = task.status
        if not isinstance(patch.status, Unset) and patch.status != task.status:
            task.status = patch.status
            task.completed_at = now if patch.status is TaskStatus.COMPLETED else None
        assigned = task.assignee_id != previous_assignee
        if details or assigned or task.status != previous_status:
            task.updated_at = self.updated_at = now
        if details:
            self._record_task(TaskUpdated, task)
        if assigned:
            self._record_task(TaskAssigned, task, previous_assignee_id=previous_assignee)
        if task.status != previous_status:
            self._record_task(TaskStatusChanged, task, previous_status=previous_status)
            if task.completed_at is not None:
                self._record_task(TaskCompleted, task, completed_at=task.completed_at)
        return task

    def move_task(self, task_id: str, placement: Placement, now: datetime) -> Task:
        self.ensure_open()
        if task_id in (placement.before, placement.after):
            raise InvalidTask("A task cannot be placed next to itself.")
        previous = self.position(task_id)
        task = self.tasks.pop(previous)
        try:
            index = self._index_for(placement)
        except TaskNotFound:
            self.tasks.insert(previous, task)
            raise InvalidTask("The task to place it next to is not in this project.") from None
        self.tasks.insert(index, task)
        if index != previous:
            task.updated_at = self.updated_at = now
            self._record_task(TaskMoved, task, previous_position=previous)
        return task

    def delete_task(self, task_id: str, now: datetime) -> Task:
        self.ensure_open()
        position = self.position(task_id)
        event = self._task_event(TaskDeleted, self.tasks[position], position)
        task = self.tasks.pop(position)
        self.updated_at = now
        self.pending_events.append(event)
        return task

    def _index_for(self, placement: Placement) -> int:
        if placement.before is not None:
            return self.position(placement.before)
        if placement.after is not None:
            return self.position(placement.after) + 1
        return len(self.tasks)

    # --- events -----------------------------------------------------------------------

    def collect_events(self) -> list[Event]:
        events, self.pending_events = self.pending_events, []
        return events

    def _record(self, kind: type[ProjectEvent], **extra: Any) -> None:
        self.pending_events.append(
            kind(
                project_id=self.id,
                venue_id=self.venue_id,
                opportunity_id=self.opportunity_id,
                contact_id=self.contact_id,
                name=self.name,
                status=self.status,
                event_type=self.event_type,
                start_date=self.start_date,
                end_date=self.end_date,
                client_ids=list(self.client_ids),
                **extra,
            )
        )

    def _record_task(self, kind: type[TaskEvent], task: Task, **extra: Any) -> None:
        self.pending_events.append(self._task_event(kind, task, self.position(task.id), **extra))

    def _task_event(
        self, kind: type[TaskEvent], task: Task, position: int, **extra: Any
    ) -> TaskEvent:
        return kind(
            task_id=task.id,
            project_id=self.id,
            venue_id=self.venue_id,
            title=task.title,
            status=task.status,
            assignee_id=task.assignee_id,
            due_date=task.due_date,
            is_internal=task.is_internal,
            position=position,
            **extra,
        )
