"""Tasks inside a project and across projects: who may do what, order, concurrency."""

import asyncio
import random
from datetime import UTC, datetime, timedelta

import pytest

from gala.contracts.contacts import UserDeactivated
from gala.identity import Role
from gala.testing import eventually

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def tasks_of(projects, who, project_id):
    response = await projects.call("GET", f"/api/v1/projects/{project_id}/tasks", who)
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def new_task(projects, who, project_id, **body):
    response = await projects.call(
        "POST", f"/api/v1/projects/{project_id}/tasks", who, {"title": "A task", **body}
    )
    assert response.status_code == 201, response.text
    return response.json()


async def test_the_assignee_must_be_an_active_user_of_the_venue(projects, task_events):
    venue, admin = projects.new_venue()
    project = await projects.win(venue)
    staff = await projects.user(venue, Role.STAFF)
    path = f"/api/v1/projects/{project['id']}/tasks"

    unknown = await projects.call("POST", path, admin, {"title": "Flowers", "assigneeId": "nobody"})
    assert unknown.status_code == 422
    assert unknown.json()["assigneeId"] == "nobody"
    _, other_admin = projects.new_venue()
    stranger = await projects.user(other_admin.venue_id, Role.STAFF)
    elsewhere = await projects.call(
        "POST", path, admin, {"title": "Flowers", "assigneeId": stranger.user_id}
    )
    assert elsewhere.status_code == 422

    task = await new_task(projects, admin, project["id"], title="Flowers", assigneeId=staff.user_id)
    assert task["assigneeId"] == staff.user_id and task["position"] == 5
    assert task["dueFollowsEvent"] is False
    assert await task_events.types(task["id"], 1) == ["gala.task.created.v1"]

    # deactivated: no new assignments
    deactivated = UserDeactivated(
        user_id=staff.user_id,
        venue_id=venue,
        email="x@people.example",
        role=Role.STAFF,
        active=False,
    )
    await projects.publish(deactivated, staff.user_id)

    async def inactive():
        copy = await projects.runtime.store["users"].find_one({"_id": staff.user_id})
        return copy["active"] is False

    await eventually(inactive)
    refused = await projects.call(
        "POST", path, admin, {"title": "Cake", "assigneeId": staff.user_id}
    )
    assert refused.status_code == 422


async def test_an_assignee_changes_only_the_status_of_their_own_task(projects, task_events):
    venue, admin = projects.new_venue()
    project = await projects.win(venue)
    staff = await projects.user(venue, Role.STAFF)
    other = await projects.user(venue, Role.STAFF)
    task = await new_task(projects, admin, project["id"], assigneeId=staff.user_id)
    await new_task(projects, admin, project["id"], assigneeId=other.user_id)  # sees the project
    path = f"/api/v1/tasks/{task['id']}"

    assert (await projects.call("PATCH", path, other, {"status": "IN_PROGRESS"})).status_code == 403
    assert (await projects.call("PATCH", path, staff, {"title": "Mine"})).status_code == 403
    done = await projects.call("PATCH", path, staff, {"status": "COMPLETED"})
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "COMPLETED" and done.json()["completedAt"] is not None
    types = await task_events.types(task["id"], 3)
    assert types == [
        "gala.task.created.v1",
        "gala.task.status_changed.v1",
        "gala.task.completed.v1",
    ]
    reopened = await projects.call("PATCH", path, admin, {"status": "TODO", "assigneeId": None})
    assert reopened.json()["completedAt"] is None and reopened.json()["assigneeId"] is None
    assert (await task_events.types(task["id"], 5))[3:] == [
        "gala.task.assigned.v1",
        "gala.task.status_changed.v1",
    ]
    bad = await projects.call("PATCH", path, admin, {"status": "DONE"})
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert (await projects.call("PATCH", path, admin, {"title": None})).status_code == 422


async def test_moves_place_a_task_before_or_after_another(projects, task_events):
    venue, admin = projects.new_venue()
    project = await projects.win(venue)
    tasks = await tasks_of(projects, admin, project["id"])
    first, last = tasks[0]["id"], tasks[-1]["id"]

    moved = await projects.call("POST", f"/api/v1/tasks/{first}/move", admin, {"after": last})
    assert moved.status_code == 200 and moved.json()["position"] == 4
    order = [t["id"] for t in await tasks_of(projects, admin, project["id"])]
    assert order == [t["id"] for t in tasks[1:]] + [first]
    back = await projects.call("POST", f"/api/v1/tasks/{first}/move", admin, {"before": order[0]})
    assert back.json()["position"] == 0
    assert await task_events.types(first, 3) == [
        "gala.task.created.v1",
        "gala.task.moved.v1",
        "gala.task.moved.v1",
    ]
    for body in ({}, {"before": first}, {"before": "nowhere"}, {"before": last, "after": last}):
        refused = await projects.call("POST", f"/api/v1/tasks/{first}/move", admin, body)
        assert refused.status_code == 422, body
    _, other = projects.new_venue()
    elsewhere = await projects.win(other.venue_id)
    foreign = (await tasks_of(projects, other, elsewhere["id"]))[0]["id"]
    across = await projects.call("POST", f"/api/v1/tasks/{first}/move", admin, {"after": foreign})
    assert across.status_code == 422
    sales = projects.member(venue, Role.SALES)
    assert (
        await projects.call("POST", f"/api/v1/tasks/{first}/move", sales, {"after": last})
    ).status_code == 403


async def test_concurrent_moves_on_two_replicas_keep_every_task_once(projects, replica):
    venue, admin = projects.new_venue()
    project = await projects.win(venue)
    for n in range(7):
        await new_task(projects, admin, project["id"], title=f"Extra {n}")
    ids = [t["id"] for t in await tasks_of(projects, admin, project["id"])]
    rng = random.Random(7)

    async def move(n: int) -> int:
        task, anchor = rng.sample(ids, 2)
        side = "before" if n % 2 else "after"
        instance = projects if n % 2 else replica
        response = await instance.call("POST", f"/api/v1/tasks/{task}/move", admin, {side: anchor})
        return response.status_code

    statuses = await asyncio.gather(*(move(n) for n in range(40)))
    assert statuses == [200] * 40  # queued per project in each replica, raced between them
    after = await tasks_of(projects, admin, project["id"])
    assert sorted(t["id"] for t in after) == sorted(ids)
    assert [t["position"] for t in after] == list(range(len(ids)))


async def test_deleting_a_task_closes_the_gap(projects, task_events):
    venue, admin = projects.new_venue()
    project = await projects.win(venue)
    tasks = await tasks_of(projects, admin, project["id"])
    deleted = await projects.call("DELETE", f"/api/v1/tasks/{tasks[1]['id']}", admin)
    assert deleted.status_code == 204
    after = await tasks_of(projects, admin, project["id"])
    assert [t["id"] for t in after] == [tasks[0]["id"], *[t["id"] for t in tasks[2:]]]
    assert [t["position"] for t in after] == [0, 1, 2, 3]
    assert (await task_events.types(tasks[1]["id"], 2))[1] == "gala.task.deleted.v1"
    gone = await projects.call("GET", f"/api/v1/tasks/{tasks[1]['id']}", admin)
    assert gone.status_code == 404


async def test_my_overdue_tasks_across_projects(projects):
    venue, admin = projects.new_venue()
    staff = await projects.user(venue, Role.STAFF)
    now = datetime.now(UTC)
    one = await projects.win(venue)
    two = await projects.win(venue)
    late = [
        await new_task(
            projects,
            admin,
            project["id"],
            title=f"Late {n}",
            assigneeId=staff.user_id,
            dueDate=(now - timedelta(days=n + 1)).isoformat(),
        )
        for n, project in enumerate((one, two, one))
    ]
    done = await new_task(
        projects,
        admin,
        two["id"],
        assigneeId=staff.user_id,
        dueDate=(now - timedelta(days=9)).isoformat(),
        status="COMPLETED",
    )
    soon = await new_task(
        projects,
        admin,
        two["id"],
        assigneeId=staff.user_id,
        dueDate=(now + timedelta(days=2)).isoformat(),
    )
    await new_task(projects, admin, one["id"], dueDate=(now - timedelta(days=5)).isoformat())

    seen, cursor = [], None
    while True:
        params = {"assignee": "me", "due": "overdue", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await projects.call("GET", "/api/v1/tasks", staff, **params)).json()
        seen += page["items"]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert [t["id"] for t in seen] == [late[2]["id"], late[1]["id"], late[0]["id"]]
    assert {t["projectId"] for t in seen} == {one["id"], two["id"]}
    assert done["id"] not in {t["id"] for t in seen}
    upcoming = await projects.call("GET", "/api/v1/tasks", staff, assignee="me", due="upcoming")
    assert [t["id"] for t in upcoming.json()["items"]] == [soon["id"]]
    everyone = await projects.call("GET", "/api/v1/tasks", admin, due="overdue", limit=200)
    assert len(everyone.json()["items"]) == 4  # three late ones and the unassigned one
    bad = await projects.call("GET", "/api/v1/tasks", staff, due="yesterday")
    assert bad.status_code == 422
