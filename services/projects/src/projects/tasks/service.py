"""Use cases for tasks: inside a project, and across the venue's projects.

ADMIN and PROJECT_MANAGER create, change, move and delete tasks; any other member of
the team may change the status of a task given to them; a CLIENT only reads the
client-visible tasks of their own projects. A task is seen by whoever sees its project
(see ``can_see``: a STAFF user only sees the projects where a task is theirs), a CLIENT
only the client-visible ones; any other task is "not found" whatever is asked of it. The
assignee must be an active user of the venue; a CLIENT may only be given a
client-visible task of their own project.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from gala.errors import Forbidden
from gala.identity import Principal, Role, ensure_role
from gala.store import decode_cursor, encode_cursor, utc_now
from gala.values import Unset
from projects.people.domain import UnknownAssignee
from projects.people.service import People
from projects.projects.domain import Project
from projects.projects.repository import ProjectRepository
from projects.projects.service import ProjectService, can_see, change_project
from projects.roles import EVERYONE, MANAGERS, TEAM
from projects.tasks.domain import Placement, Task, TaskNotFound, TaskPatch
from projects.tasks.repository import ProjectTask, TaskFilter, TaskRepository

Clock = Callable[[], datetime]


def can_see_task(principal: Principal, project: Project, task: Task) -> bool:
    """Whether the caller may know of the task (else it is "not found" to them)."""
    if not can_see(principal, project):
        return False
    return not (principal.role is Role.CLIENT and task.is_internal)


class TaskService:
    def __init__(
        self,
        projects: ProjectRepository,
        tasks: TaskRepository,
        people: People,
        project_service: ProjectService,
        clock: Clock = utc_now,
    ) -> None:
        self._projects = projects
        self._tasks = tasks
        self._people = people
        self._project_service = project_service
        self._clock = clock

    # --- a project's tasks ------------------------------------------------------------

    async def of_project(
        self, principal: Principal, project_id: str, limit: int, cursor: str | None
    ) -> tuple[Project, list[ProjectTask], str | None]:
        """The project's tasks in order (a CLIENT: the client-visible ones), a page at a
        time; positions are those of the whole list."""
        project = await self._project_service.visible(principal, project_id)
        start = int(decode_cursor(cursor, 1)[0]) if cursor else 0
        listed = [
            ProjectTask(project.id, task, position)
            for position, task in enumerate(project.tasks)
            if position >= start and not (principal.role is Role.CLIENT and task.is_internal)
        ]
        page = listed[:limit]
        more = len(listed) > limit
        return project, page, encode_cursor([listed[limit].position]) if more else None

    async def create(
        self,
        principal: Principal,
        project_id: str,
        placement: Placement,
        **fields: Any,
    ) -> ProjectTask:
        await self._project_service.ensure_may(principal, project_id, MANAGERS, "create tasks")
        now = self._clock()
        created: list[Task] = []

        def add(project: Project) -> bool:
            created.append(project.add_task(now=now, placement=placement, **fields))
            return True

        async def load() -> Project | None:
            project = await self._projects.get(principal.venue_id, project_id)
            if project is not None:
                await self._check_assignee(
                    project, fields.get("assignee_id"), bool(fields.get("is_internal"))
                )
            return project

        project = await change_project(self._projects, load, add)
        task = created[-1]
        return ProjectTask(project.id, task, project.position(task.id))

    # --- one task ---------------------------------------------------------------------

    async def get(self, principal: Principal, task_id: str) -> ProjectTask:
        ensure_role(principal, EVERYONE, "see tasks")
        project = await self._with_task(principal, task_id)
        return ProjectTask(project.id, project.task(task_id), project.position(task_id))

    async def update(self, principal: Principal, task_id: str, patch: TaskPatch) -> ProjectTask:
        now = self._clock()

        async def load() -> Project | None:
            project = await self._with_task(principal, task_id)
            task = project.task(task_id)
            self._ensure_may_change(principal, task, patch)
            assignee = (
                task.assignee_id if isinstance(patch.assignee_id, Unset) else patch.assignee_id
            )
            internal = (
                task.is_internal if isinstance(patch.is_internal, Unset) else patch.is_internal
            )
            if (assignee, internal) != (task.assignee_id, task.is_internal):
                await self._check_assignee(project, assignee, internal)
            return project

        def change(project: Project) -> bool:
            project.change_task(task_id, patch, now)
            return True  # saved even without an event: a due date set by hand stays

        project = await change_project(self._projects, load, change)
        return ProjectTask(project.id, project.task(task_id), project.position(task_id))

    async def move(self, principal: Principal, task_id: str, placement: Placement) -> ProjectTask:
        await self._ensure_may(principal, task_id, "move tasks")
        now = self._clock()

        def move(project: Project) -> bool:
            before = len(project.pending_events)
            project.move_task(task_id, placement, now)
            return len(project.pending_events) > before

        project = await change_project(
            self._projects, lambda: self._with_task(principal, task_id), move
        )
        return ProjectTask(project.id, project.task(task_id), project.position(task_id))

    async def delete(self, principal: Principal, task_id: str) -> None:
        await self._ensure_may(principal, task_id, "delete tasks")
        now = self._clock()

        def delete(project: Project) -> bool:
            project.delete_task(task_id, now)
            return True

        await change_project(self._projects, lambda: self._with_task(principal, task_id), delete)

    # --- across projects --------------------------------------------------------------

    async def across(
        self, principal: Principal, where: TaskFilter, limit: int, cursor: str | None
    ) -> tuple[list[ProjectTask], str | None]:
        """Tasks of the venue's open projects (a CLIENT: of theirs, client-visible), by
        due date."""
        ensure_role(principal, EVERYONE, "list tasks")
        if principal.role is Role.STAFF:
            where = replace(where, member_id=principal.user_id)
        elif principal.role is Role.CLIENT:
            where = replace(where, client_id=principal.user_id)
        return await self._tasks.page(principal.venue_id, where, self._clock(), limit, cursor)

    # --- rules ------------------------------------------------------------------------

    async def _with_task(self, principal: Principal, task_id: str) -> Project:
        """The task's project, if the caller may see the task; else 404."""
        project = await self._projects.with_task(principal.venue_id, task_id)
        if project is None or not can_see_task(principal, project, project.task(task_id)):
            raise TaskNotFound()
        return project

    async def _ensure_may(self, principal: Principal, task_id: str, doing: str) -> None:
        """404 if the caller may not see the task, then 403 unless they are a manager."""
        if principal.role not in MANAGERS:
            await self._with_task(principal, task_id)
        ensure_role(principal, MANAGERS, doing)

    @staticmethod
    def _ensure_may_change(principal: Principal, task: Task, patch: TaskPatch) -> None:
        if principal.role in MANAGERS:
            return
        ensure_role(principal, TEAM, "change tasks")
        if task.assignee_id != principal.user_id or not patch.only_status:
            raise Forbidden(
                "Only ADMIN or PROJECT_MANAGER may change tasks; an assignee may change"
                " the status of their own task."
            )

    async def _check_assignee(
        self, project: Project, assignee_id: str | None, is_internal: bool
    ) -> None:
        if assignee_id is None:
            return
        user = await self._people.require_assignee(project.venue_id, assignee_id)
        if user.is_client:
            if is_internal:
                raise UnknownAssignee(assignee_id, "is a client, and the task is internal")
            if assignee_id not in project.client_ids:
                raise UnknownAssignee(assignee_id, "is a client of another project")
