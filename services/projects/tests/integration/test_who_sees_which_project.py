"""Who sees which project, its tasks and its client link (architecture.md, Guarantees 5).

ADMIN and PROJECT_MANAGER: every project and task of their venue, with the client link.
SALES: every project and task, never the client link. STAFF: only the projects where a
task is assigned to them, and every task of those; any other project does not exist for
them (404 whatever they ask of it, and lists leave it out); never the client link.
CLIENT: their own projects' client-visible part. Another venue: nothing.

One venue holds the project under test (``project``) and a second one (``elsewhere``);
the assigned STAFF user has a task in ``project``, the unassigned one only in
``elsewhere``. Every row is one caller and one route: the status, what a list holds,
and whether the client link (or its value) appears anywhere in the answer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from gala.contracts.projects import ProjectStatus
from gala.identity import Principal, Role
from gala.store import uses_index
from projects.projects.repository import ProjectFilter, ProjectRepository

pytestmark = pytest.mark.asyncio(loop_scope="session")

ADMIN, PM, SALES = "ADMIN", "PROJECT_MANAGER", "SALES"
ASSIGNED, UNASSIGNED = "assigned STAFF", "unassigned STAFF"
CLIENT, STRANGER = "CLIENT of the project", "other venue's ADMIN"
LINK_HOLDERS = {ADMIN, PM}


@dataclass
class Scene:
    projects: Any
    admin: Principal
    who: dict[str, Principal]
    project: str
    elsewhere: str
    internal_task: str
    staff_task: str
    """Client-visible, assigned to the assigned STAFF user."""

    async def link(self) -> str:
        """The project's client link now (the rotate rows change it)."""
        got = await self.projects.call("GET", f"/api/v1/projects/{self.project}", self.admin)
        link: str = got.json()["clientLink"]
        return link

    async def new_task(self, **body: Any) -> str:
        path = f"/api/v1/projects/{self.project}/tasks"
        made = await self.projects.call("POST", path, self.admin, {"title": "A task", **body})
        assert made.status_code == 201, made.text
        task_id: str = made.json()["id"]
        return task_id


@pytest.fixture(scope="module")
async def scene(projects: Any) -> Scene:
    venue, admin = projects.new_venue()
    _, stranger = projects.new_venue()
    client = await projects.user(venue, Role.CLIENT)
    assigned = await projects.user(venue, Role.STAFF)
    unassigned = await projects.user(venue, Role.STAFF)
    project = await projects.win(venue)
    elsewhere = await projects.win(venue, name="Jones gala")
    path = f"/api/v1/projects/{project['id']}"
    joined = await projects.call("PATCH", path, admin, {"clientIds": [client.user_id]})
    assert joined.status_code == 200, joined.text
    scene = Scene(
        projects=projects,
        admin=admin,
        who={
            ADMIN: admin,
            PM: projects.member(venue, Role.PROJECT_MANAGER),
            SALES: projects.member(venue, Role.SALES),
            ASSIGNED: assigned,
            UNASSIGNED: unassigned,
            CLIENT: client,
            STRANGER: stranger,
        },
        project=project["id"],
        elsewhere=elsewhere["id"],
        internal_task="",
        staff_task="",
    )
    tasks = (await projects.call("GET", f"{path}/tasks", admin)).json()["items"]
    scene.internal_task = next(t["id"] for t in tasks if t["isInternal"])
    scene.staff_task = await scene.new_task(title="Table linen", assigneeId=assigned.user_id)
    other = f"/api/v1/projects/{elsewhere['id']}/tasks"
    given = await projects.call(
        "POST", other, admin, {"title": "Lights", "assigneeId": unassigned.user_id}
    )
    assert given.status_code == 201, given.text
    return scene


# --- the routes ---------------------------------------------------------------------------

Route = Callable[[Scene, Principal], Awaitable[httpx.Response]]


async def list_projects(s: Scene, who: Principal) -> httpx.Response:
    return await s.projects.call("GET", "/api/v1/projects", who, limit=200)


async def get_project(s: Scene, who: Principal) -> httpx.Response:
    return await s.projects.call("GET", f"/api/v1/projects/{s.project}", who)


async def list_project_tasks(s: Scene, who: Principal) -> httpx.Response:
    return await s.projects.call("GET", f"/api/v1/projects/{s.project}/tasks", who)


async def list_tasks(s: Scene, who: Principal) -> httpx.Response:
    return await s.projects.call("GET", "/api/v1/tasks", who, limit=200)


async def list_tasks_of_project(s: Scene, who: Principal) -> httpx.Response:
    return await s.projects.call("GET", "/api/v1/tasks", who, projectId=s.project, limit=200)


async def get_internal_task(s: Scene, who: Principal) -> httpx.Response:
    return await s.projects.call("GET", f"/api/v1/tasks/{s.internal_task}", who)


async def get_staff_task(s: Scene, who: Principal) -> httpx.Response:
    return await s.projects.call("GET", f"/api/v1/tasks/{s.staff_task}", who)


async def update_project(s: Scene, who: Principal) -> httpx.Response:
    body = {"name": "Smith wedding"}  # its name already: changes nothing when allowed
    return await s.projects.call("PATCH", f"/api/v1/projects/{s.project}", who, body)


async def rotate_link(s: Scene, who: Principal) -> httpx.Response:
    return await s.projects.call("POST", f"/api/v1/projects/{s.project}/client-link/rotate", who)


async def create_task(s: Scene, who: Principal) -> httpx.Response:
    path = f"/api/v1/projects/{s.project}/tasks"
    return await s.projects.call("POST", path, who, {"title": "Candles"})


async def update_staff_task(s: Scene, who: Principal) -> httpx.Response:
    body = {"status": "IN_PROGRESS"}
    return await s.projects.call("PATCH", f"/api/v1/tasks/{s.staff_task}", who, body)


async def move_staff_task(s: Scene, who: Principal) -> httpx.Response:
    """Placed where it is already (after the task before it)."""
    tasks = (await list_project_tasks(s, s.admin)).json()["items"]
    index = next(i for i, t in enumerate(tasks) if t["id"] == s.staff_task)
    body = {"after": tasks[index - 1]["id"]}
    return await s.projects.call("POST", f"/api/v1/tasks/{s.staff_task}/move", who, body)


async def delete_a_task(s: Scene, who: Principal) -> httpx.Response:
    task_id = await s.new_task(title="Spare chairs")
    return await s.projects.call("DELETE", f"/api/v1/tasks/{task_id}", who)


async def list_templates(s: Scene, who: Principal) -> httpx.Response:
    return await s.projects.call("GET", "/api/v1/projects/templates", who)


# --- what each caller gets ----------------------------------------------------------------

ALL, VISIBLE, NONE = "all", "client-visible", "none"


@dataclass(frozen=True)
class Expect:
    status: int
    link: bool = False
    """The client link is in the answer (else neither the field nor its value is)."""
    listed: frozenset[str] | None = None
    """For a list of projects or of tasks across projects: which of the two projects
    (``project``, ``elsewhere``) it holds."""
    tasks: str | None = None
    """For the project's tasks: all, the client-visible ones, or none."""


BOTH = frozenset({"project", "elsewhere"})
THIS = frozenset({"project"})
OTHER = frozenset({"elsewhere"})
EMPTY: frozenset[str] = frozenset()


def per_role(**expected: Expect) -> dict[str, Expect]:
    names = {
        "admin": ADMIN,
        "pm": PM,
        "sales": SALES,
        "assigned": ASSIGNED,
        "unassigned": UNASSIGNED,
        "client": CLIENT,
        "stranger": STRANGER,
    }
    return {names[key]: value for key, value in expected.items()}


def only_managers(ok: int) -> dict[str, Expect]:
    """A change only ADMIN and PROJECT_MANAGER may make: 403 for whoever sees the
    project, 404 for whoever does not."""
    return per_role(
        admin=Expect(ok),
        pm=Expect(ok),
        sales=Expect(403),
        assigned=Expect(403),
        unassigned=Expect(404),
        client=Expect(403),
        stranger=Expect(404),
    )


TABLE: dict[str, tuple[Route, dict[str, Expect]]] = {
    "list projects": (
        list_projects,
        per_role(
            admin=Expect(200, link=True, listed=BOTH),
            pm=Expect(200, link=True, listed=BOTH),
            sales=Expect(200, listed=BOTH),
            assigned=Expect(200, listed=THIS),
            unassigned=Expect(200, listed=OTHER),
            client=Expect(200, listed=THIS),
            stranger=Expect(200, listed=EMPTY),
        ),
    ),
    "get project": (
        get_project,
        per_role(
            admin=Expect(200, link=True),
            pm=Expect(200, link=True),
            sales=Expect(200),
            assigned=Expect(200),
            unassigned=Expect(404),
            client=Expect(200),
            stranger=Expect(404),
        ),
    ),
    "list the project's tasks": (
        list_project_tasks,
        per_role(
            admin=Expect(200, tasks=ALL),
            pm=Expect(200, tasks=ALL),
            sales=Expect(200, tasks=ALL),
            assigned=Expect(200, tasks=ALL),
            unassigned=Expect(404),
            client=Expect(200, tasks=VISIBLE),
            stranger=Expect(404),
        ),
    ),
    "list tasks across projects": (
        list_tasks,
        per_role(
            admin=Expect(200, listed=BOTH),
            pm=Expect(200, listed=BOTH),
            sales=Expect(200, listed=BOTH),
            assigned=Expect(200, listed=THIS),
            unassigned=Expect(200, listed=OTHER),
            client=Expect(200, listed=THIS),
            stranger=Expect(200, listed=EMPTY),
        ),
    ),
    "list tasks across projects, of this project": (
        list_tasks_of_project,
        per_role(
            admin=Expect(200, tasks=ALL),
            pm=Expect(200, tasks=ALL),
            sales=Expect(200, tasks=ALL),
            assigned=Expect(200, tasks=ALL),
            unassigned=Expect(200, tasks=NONE),
            client=Expect(200, tasks=VISIBLE),
            stranger=Expect(200, tasks=NONE),
        ),
    ),
    "get an internal task": (
        get_internal_task,
        per_role(
            admin=Expect(200),
            pm=Expect(200),
            sales=Expect(200),
            assigned=Expect(200),
            unassigned=Expect(404),
            client=Expect(404),
            stranger=Expect(404),
        ),
    ),
    "get a client-visible task": (
        get_staff_task,
        per_role(
            admin=Expect(200),
            pm=Expect(200),
            sales=Expect(200),
            assigned=Expect(200),
            unassigned=Expect(404),
            client=Expect(200),
            stranger=Expect(404),
        ),
    ),
    "update project": (
        update_project,
        {**only_managers(200), ADMIN: Expect(200, link=True), PM: Expect(200, link=True)},
    ),
    "rotate the client link": (
        rotate_link,
        {**only_managers(200), ADMIN: Expect(200, link=True), PM: Expect(200, link=True)},
    ),
    "create a task": (create_task, only_managers(201)),
    "change the status of the assigned STAFF user's task": (
        update_staff_task,
        {**only_managers(200), ASSIGNED: Expect(200)},
    ),
    "move a task": (move_staff_task, only_managers(200)),
    "delete a task": (delete_a_task, only_managers(204)),
    "list templates": (
        list_templates,
        per_role(
            admin=Expect(200),
            pm=Expect(200),
            sales=Expect(200),
            assigned=Expect(200),
            unassigned=Expect(200),
            client=Expect(403),
            stranger=Expect(200),
        ),
    ),
}

ROWS = [
    pytest.param(route, who, id=f"{route} as {who}")
    for route, (_, expected) in TABLE.items()
    for who in expected
]


def keys_of(body: Any) -> set[str]:
    """Every key anywhere in a JSON body."""
    if isinstance(body, dict):
        return set(body).union(*(keys_of(value) for value in body.values()))
    if isinstance(body, list):
        return set().union(*(keys_of(value) for value in body))
    return set()


@pytest.mark.parametrize(("route", "who"), ROWS)
async def test_what_each_caller_gets(scene: Scene, route: str, who: str) -> None:
    call, expected = TABLE[route]
    expect = expected[who]
    response = await call(scene, scene.who[who])
    assert response.status_code == expect.status, response.text
    link = await scene.link()
    if expect.status >= 400:
        assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json() if response.content else None
    if expect.link:
        shown = body.get("items", [body])
        assert all("clientLink" in item for item in shown)
        assert [i["clientLink"] for i in shown if i["id"] == scene.project] == [link]
    else:
        assert "clientLink" not in keys_of(body)
        assert link not in response.text
    if expect.listed is not None:
        ids = {"project": scene.project, "elsewhere": scene.elsewhere}
        key = "projectId" if route.startswith("list tasks") else "id"
        seen = {item[key] for item in body["items"]}
        assert seen == {ids[name] for name in expect.listed}
    if expect.tasks is not None:
        every = (await list_project_tasks(scene, scene.admin)).json()["items"]
        wanted = {
            ALL: {t["id"] for t in every},
            VISIBLE: {t["id"] for t in every if not t["isInternal"]},
            NONE: set(),
        }[expect.tasks]
        assert {t["id"] for t in body["items"]} == wanted


async def test_unassigning_a_staff_user_takes_the_project_away_at_once(projects, replica):
    """Taking away their last task of a project: the next request, on either replica,
    is 404; a new assignment gives it back just as fast."""
    venue, admin = projects.new_venue()
    staff = await projects.user(venue, Role.STAFF)
    project = await projects.win(venue)
    path = f"/api/v1/projects/{project['id']}"
    first, second = [
        (
            await projects.call(
                "POST", f"{path}/tasks", admin, {"title": title, "assigneeId": staff.user_id}
            )
        ).json()["id"]
        for title in ("Flowers", "Cake")
    ]

    async def sees(instance: Any) -> bool:
        got = await instance.call("GET", path, staff)
        assert got.status_code in (200, 404), got.text
        listed = (await instance.call("GET", "/api/v1/projects", staff)).json()["items"]
        tasks = (await instance.call("GET", "/api/v1/tasks", staff, limit=200)).json()["items"]
        shown = got.status_code == 200
        assert ([p["id"] for p in listed] == [project["id"]]) is shown
        assert bool(tasks) is shown
        return shown

    assert await sees(projects) and await sees(replica)
    unassign = {"assigneeId": None}
    assert (await projects.call("PATCH", f"/api/v1/tasks/{first}", admin, unassign)).is_success
    assert await sees(replica)  # one task of theirs is left
    assert (await projects.call("PATCH", f"/api/v1/tasks/{second}", admin, unassign)).is_success
    assert not await sees(replica) and not await sees(projects)
    for method, task_path, body in (
        ("GET", f"/api/v1/tasks/{first}", None),
        ("PATCH", f"/api/v1/tasks/{second}", {"status": "COMPLETED"}),
        ("GET", f"{path}/tasks", None),
    ):
        gone = await replica.call(method, task_path, staff, body)
        assert gone.status_code == 404, (method, task_path)

    given = {"assigneeId": staff.user_id}
    assert (await replica.call("PATCH", f"/api/v1/tasks/{first}", admin, given)).is_success
    assert await sees(projects)
    # deleting their last task takes it away too
    assert (await projects.call("DELETE", f"/api/v1/tasks/{first}", admin)).status_code == 204
    assert not await sees(replica)


STAFF_LISTINGS = {
    "none": ProjectFilter(),
    "status": ProjectFilter(status=ProjectStatus.ACTIVE),
    "opportunityId": ProjectFilter(opportunity_id="nothing"),
}


@pytest.mark.parametrize("filter_name", list(STAFF_LISTINGS))
async def test_a_staff_listing_reads_one_page_through_an_index(projects, filter_name):
    """A STAFF user's projects are found by the store (not by reading the venue's
    projects here), first page and after a cursor, through an index."""
    venue, admin = projects.new_venue()
    staff = await projects.user(venue, Role.STAFF)
    made = [await projects.win(venue, name=f"Party {n}") for n in range(5)]
    for project in made[:3]:
        given = await projects.call(
            "POST",
            f"/api/v1/projects/{project['id']}/tasks",
            admin,
            {"title": "Usher", "assigneeId": staff.user_id},
        )
        assert given.status_code == 201

    page = (await projects.call("GET", "/api/v1/projects", staff, limit=2)).json()
    assert len(page["items"]) == 2 and page["nextCursor"]
    repository = ProjectRepository(projects.runtime.store, projects.runtime.outbox)
    where = STAFF_LISTINGS[filter_name]
    mine = ProjectFilter(
        status=where.status, opportunity_id=where.opportunity_id, assignee_id=staff.user_id
    )
    items, cursor = await repository.page(venue, mine, 2, None)
    assert uses_index(await repository.explain(venue, mine, 2, None))
    if filter_name != "opportunityId":
        assert [p.id for p in items] and all(p.is_assigned(staff.user_id) for p in items)
        assert cursor is not None
        assert uses_index(await repository.explain(venue, mine, 2, cursor))
        rest, _ = await repository.page(venue, mine, 2, cursor)
        assert {p.id for p in [*items, *rest]} == {p["id"] for p in made[:3]}
