"""A venue's task templates: edited through the API, used by the next projects."""

import pytest

from gala.identity import Role

pytestmark = pytest.mark.asyncio(loop_scope="session")

TEMPLATES = "/api/v1/projects/templates"


async def test_a_venue_template_replaces_the_built_in_one_until_reset(projects):
    venue, admin = projects.new_venue()
    listed = (await projects.call("GET", TEMPLATES, admin)).json()["items"]
    assert {t["eventType"] for t in listed} == {"CONFERENCE", "DEFAULT", "WEDDING"}
    assert not any(t["custom"] for t in listed)

    body = {
        "durationHours": 5,
        "tasks": [
            {"title": "Menu", "daysBefore": 20},
            {"title": "Wine pairing", "daysBefore": 10, "description": "With the sommelier"},
            {"title": "Thank-you call", "daysBefore": -2, "isInternal": True},
        ],
    }
    staff = projects.member(venue, Role.STAFF)
    assert (await projects.call("PUT", f"{TEMPLATES}/gala dinner", staff, body)).status_code == 403
    put = await projects.call("PUT", f"{TEMPLATES}/gala   dinner", admin, body)
    assert put.status_code == 200, put.text
    assert put.json()["eventType"] == "GALA DINNER" and put.json()["custom"] is True
    got = (await projects.call("GET", f"{TEMPLATES}/Gala Dinner", staff)).json()
    assert [t["title"] for t in got["tasks"]] == ["Menu", "Wine pairing", "Thank-you call"]

    project = await projects.win(venue, event_type="Gala dinner")
    tasks = (await projects.call("GET", f"/api/v1/projects/{project['id']}/tasks", admin)).json()
    assert [t["title"] for t in tasks["items"]] == ["Menu", "Wine pairing", "Thank-you call"]
    # another venue still has the built-in DEFAULT for that type
    _, other_admin = projects.new_venue()
    other = (await projects.call("GET", f"{TEMPLATES}/gala dinner", other_admin)).json()
    assert other["eventType"] == "DEFAULT" and other["custom"] is False

    assert (await projects.call("DELETE", f"{TEMPLATES}/GALA DINNER", admin)).status_code == 204
    back = (await projects.call("GET", f"{TEMPLATES}/gala dinner", admin)).json()
    assert back["eventType"] == "DEFAULT"
    # the project made from the template keeps its tasks
    again = (await projects.call("GET", f"/api/v1/projects/{project['id']}/tasks", admin)).json()
    assert len(again["items"]) == 3


async def test_a_bad_template_is_refused_and_changes_nothing(projects):
    _, admin = projects.new_venue()
    for body in (
        {"durationHours": 0, "tasks": []},
        {"durationHours": 5, "tasks": [{"title": "", "daysBefore": 1}]},
        {"durationHours": 5, "tasks": [{"title": "Too early", "daysBefore": 5000}]},
        {"durationHours": 5, "tasks": [{"title": "x", "daysBefore": 1, "extra": True}]},
        {"durationHours": 5, "tasks": [{"title": "x", "daysBefore": 1}] * 101},
    ):
        refused = await projects.call("PUT", f"{TEMPLATES}/WEDDING", admin, body)
        assert refused.status_code == 422, body
        assert refused.headers["content-type"].startswith("application/problem+json")
    wedding = (await projects.call("GET", f"{TEMPLATES}/WEDDING", admin)).json()
    assert wedding["custom"] is False and len(wedding["tasks"]) == 5
