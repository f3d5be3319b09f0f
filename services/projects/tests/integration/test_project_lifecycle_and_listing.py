"""A project's status, its details, and the venue's listing."""

from datetime import UTC, datetime, timedelta

import pytest

from gala.identity import Role

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_status_moves_active_on_hold_then_completed_which_is_final(projects, project_events):
    venue, admin = projects.new_venue()
    project = await projects.win(venue)
    path = f"/api/v1/projects/{project['id']}"
    for status in ("ON_HOLD", "ACTIVE", "ON_HOLD", "COMPLETED"):
        response = await projects.call("PATCH", path, admin, {"status": status})
        assert response.status_code == 200, response.text
        assert response.json()["status"] == status
    types = await project_events.types(project["id"], 5)
    assert types == ["gala.project.created.v1"] + ["gala.project.status_changed.v1"] * 4
    for body in ({"status": "ACTIVE"}, {"status": "CANCELLED"}, {"name": "Again"}):
        refused = await projects.call("PATCH", path, admin, body)
        assert refused.status_code == 409, body
    tasks = (await projects.call("GET", f"{path}/tasks", admin)).json()["items"]
    task = await projects.call(
        "PATCH", f"/api/v1/tasks/{tasks[0]['id']}", admin, {"status": "COMPLETED"}
    )
    assert task.status_code == 409
    added = await projects.call("POST", f"{path}/tasks", admin, {"title": "Late"})
    assert added.status_code == 409


async def test_bad_details_are_refused_and_change_nothing(projects):
    venue, admin = projects.new_venue()
    project = await projects.win(venue)
    path = f"/api/v1/projects/{project['id']}"
    before = (await projects.call("GET", path, admin)).json()
    start = datetime.fromisoformat(project["startDate"])
    for body in (
        {"endDate": (start - timedelta(hours=1)).isoformat()},
        {"name": ""},
        {"status": "DONE"},
        {"name": None},
        {"unknown": 1},
        {"settings": {"blob": "x" * 20_000}},
    ):
        refused = await projects.call("PATCH", path, admin, body)
        assert refused.status_code == 422, body
        assert refused.headers["content-type"].startswith("application/problem+json")
    assert (await projects.call("GET", path, admin)).json() == before
    settings = {"theme": {"colour": "ivory"}, "$odd.key": True}
    kept = await projects.call("PATCH", path, admin, {"settings": settings})
    assert kept.status_code == 200 and kept.json()["settings"] == settings


async def test_listing_filters_by_status_and_start_and_pages_with_a_cursor(projects):
    venue, admin = projects.new_venue()
    base = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
    made = [await projects.win(venue, event_date=base + timedelta(days=n)) for n in range(5)]
    held = made[3]["id"]
    await projects.call("PATCH", f"/api/v1/projects/{held}", admin, {"status": "ON_HOLD"})

    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await projects.call("GET", "/api/v1/projects", admin, **params)).json()
        seen += [p["id"] for p in page["items"]]
        cursor = page["nextCursor"]
        if not cursor:
            break
    assert seen == [p["id"] for p in made]  # by start date
    on_hold = await projects.call("GET", "/api/v1/projects", admin, status="ON_HOLD")
    assert [p["id"] for p in on_hold.json()["items"]] == [held]
    window = await projects.call(
        "GET",
        "/api/v1/projects",
        admin,
        startFrom=(base + timedelta(days=1)).isoformat(),
        startTo=(base + timedelta(days=3)).isoformat(),
    )
    assert [p["id"] for p in window.json()["items"]] == [made[1]["id"], made[2]["id"]]
    sales = projects.member(venue, Role.SALES)
    assert len((await projects.call("GET", "/api/v1/projects", sales)).json()["items"]) == 5
    bad = await projects.call("GET", "/api/v1/projects", admin, cursor="not-a-cursor")
    assert bad.status_code == 422
