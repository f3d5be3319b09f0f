"""HTTP entry points for tasks: a project's list, one task, and tasks across projects."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from gala.api import Cursor, Limit, PageOut, problems
from gala.app import OutboxDep, StoreDep
from gala.contracts.projects import TaskStatus
from gala.errors import Forbidden, InvalidInput
from gala.identity import CurrentPrincipal, Principal, Role
from projects.people.domain import UnknownAssignee
from projects.people.repository import PeopleRepository
from projects.people.service import People
from projects.projects.api import Projects
from projects.projects.domain import ProjectChangedConcurrently, ProjectClosed, ProjectNotFound
from projects.projects.repository import ProjectRepository
from projects.tasks.domain import InvalidTask, TaskNotFound
from projects.tasks.repository import Due, ProjectTask, TaskFilter, TaskRepository
from projects.tasks.schemas import ClientTaskOut, CreateTaskIn, MoveTaskIn, TaskOut, UpdateTaskIn
from projects.tasks.service import TaskService

ME = "me"


async def task_service(store: StoreDep, outbox: OutboxDep, projects: Projects) -> TaskService:
    return TaskService(
        ProjectRepository(store, outbox),
        TaskRepository(store),
        People(PeopleRepository(store)),
        projects,
    )


Tasks = Annotated[TaskService, Depends(task_service)]
router = APIRouter(tags=["tasks"])
CHANGE_PROBLEMS = (
    Forbidden,
    TaskNotFound,
    InvalidTask,
    UnknownAssignee,
    ProjectClosed,
    ProjectChangedConcurrently,
)


def shown(principal: Principal, item: ProjectTask) -> TaskOut | ClientTaskOut:
    if principal.role is Role.CLIENT:
        return ClientTaskOut.of(item)
    return TaskOut.of(item)


def page_of(
    principal: Principal, items: list[ProjectTask], next_cursor: str | None
) -> PageOut[TaskOut] | PageOut[ClientTaskOut]:
    if principal.role is Role.CLIENT:
        return PageOut[ClientTaskOut](
            items=[ClientTaskOut.of(i) for i in items], next_cursor=next_cursor
        )
    return PageOut[TaskOut](items=[TaskOut.of(i) for i in items], next_cursor=next_cursor)


@router.get("/api/v1/projects/{project_id}/tasks", responses=problems(Forbidden, ProjectNotFound))
async def list_project_tasks(
    principal: CurrentPrincipal,
    tasks: Tasks,
    project_id: str,
    limit: Limit = 200,
    cursor: Cursor = None,
) -> PageOut[TaskOut] | PageOut[ClientTaskOut]:
    """The project's tasks in their order (a CLIENT: the client-visible ones); 404 for a
    project the caller may not see."""
    _, items, next_cursor = await tasks.of_project(principal, project_id, limit, cursor)
    return page_of(principal, items, next_cursor)


@router.post(
    "/api/v1/projects/{project_id}/tasks",
    status_code=status.HTTP_201_CREATED,
    responses=problems(ProjectNotFound, *CHANGE_PROBLEMS),
)
async def create_task(
    principal: CurrentPrincipal,
    tasks: Tasks,
    project_id: str,
    body: CreateTaskIn,
    response: Response,
) -> TaskOut:
    """Add a task (ADMIN, PROJECT_MANAGER): at the end, or ``before``/``after`` a task."""
    item = await tasks.create(principal, project_id, body.placement(), **body.fields())
    response.headers["Location"] = f"/api/v1/tasks/{item.task.id}"
    return TaskOut.of(item)


@router.get("/api/v1/tasks", responses=problems(Forbidden, InvalidInput))
async def list_tasks(
    principal: CurrentPrincipal,
    tasks: Tasks,
    assignee: Annotated[str | None, Query(max_length=200, description="A user id, or `me`")] = None,
    due: Due | None = None,
    task_status: Annotated[TaskStatus | None, Query(alias="status")] = None,
    project_id: Annotated[str | None, Query(alias="projectId", max_length=200)] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> PageOut[TaskOut] | PageOut[ClientTaskOut]:
    """Tasks across the venue's open projects (a STAFF user: of the projects where a task
    is theirs; a CLIENT: their own, client-visible), by due date, undated last.
    ``due=overdue``: past due and not completed; ``due=upcoming``: due in the next 7 days
    and not completed."""
    where = TaskFilter(
        assignee_id=principal.user_id if assignee == ME else assignee,
        due=due,
        status=task_status,
        project_id=project_id,
    )
    items, next_cursor = await tasks.across(principal, where, limit, cursor)
    return page_of(principal, items, next_cursor)


@router.get("/api/v1/tasks/{task_id}", responses=problems(Forbidden, TaskNotFound))
async def get_task(
    principal: CurrentPrincipal, tasks: Tasks, task_id: str
) -> TaskOut | ClientTaskOut:
    return shown(principal, await tasks.get(principal, task_id))


@router.patch("/api/v1/tasks/{task_id}", responses=problems(*CHANGE_PROBLEMS))
async def update_task(
    principal: CurrentPrincipal, tasks: Tasks, task_id: str, body: UpdateTaskIn
) -> TaskOut:
    """Change a task (ADMIN, PROJECT_MANAGER; its assignee: only the status); 404 for a
    task the caller may not see."""
    try:
        patch = body.patch()
    except ValueError as exc:
        raise InvalidTask(str(exc)) from exc
    return TaskOut.of(await tasks.update(principal, task_id, patch))


@router.post("/api/v1/tasks/{task_id}/move", responses=problems(*CHANGE_PROBLEMS))
async def move_task(
    principal: CurrentPrincipal, tasks: Tasks, task_id: str, body: MoveTaskIn
) -> TaskOut:
    """Place it just ``before`` or just ``after`` another task of its project (drag and
    drop); the others keep their order."""
    return TaskOut.of(await tasks.move(principal, task_id, body.placement()))


@router.delete(
    "/api/v1/tasks/{task_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(*CHANGE_PROBLEMS),
)
async def delete_task(principal: CurrentPrincipal, tasks: Tasks, task_id: str) -> None:
    await tasks.delete(principal, task_id)
