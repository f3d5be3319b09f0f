"""Clients: who they are (by e-mail address), what they see, and the portal link."""

import uuid

import pytest

from gala.contracts.contacts import UserRoleChanged
from gala.identity import Role
from gala.testing import eventually

pytestmark = pytest.mark.asyncio(loop_scope="session")

INTERNAL_FIELDS = {"clientLink", "opportunityId", "contactId", "settings", "clientIds", "venueId"}


async def test_a_client_user_joins_the_project_of_their_contact_and_sees_only_that(
    projects, project_events
):
    venue, admin = projects.new_venue()
    email = f"bride-{uuid.uuid4().hex[:6]}@wed.example"
    contact_id = await projects.contact(venue, f"  {email.upper()} ")
    # the user exists before the project: joins it when it is made
    client = await projects.user(venue, Role.CLIENT, email=email)
    mine = await projects.win(venue, contact_id=contact_id)
    assert mine["clientIds"] == [client.user_id]
    other = await projects.win(venue)

    listed = (await projects.call("GET", "/api/v1/projects", client)).json()["items"]
    assert [p["id"] for p in listed] == [mine["id"]]
    assert not INTERNAL_FIELDS & set(listed[0])
    seen = await projects.call("GET", f"/api/v1/projects/{mine['id']}", client)
    assert seen.status_code == 200 and not INTERNAL_FIELDS & set(seen.json())
    hidden = await projects.call("GET", f"/api/v1/projects/{other['id']}", client)
    assert hidden.status_code == 404

    tasks = (await projects.call("GET", f"/api/v1/projects/{mine['id']}/tasks", client)).json()
    assert [t["title"] for t in tasks["items"]] == ["Menu tasting", "Floor plan", "Final headcount"]
    assert all("isInternal" not in t and "assigneeId" not in t for t in tasks["items"])
    staff_view = (await projects.call("GET", f"/api/v1/projects/{mine['id']}/tasks", admin)).json()
    internal = next(t for t in staff_view["items"] if t["isInternal"])
    hidden = await projects.call("GET", f"/api/v1/tasks/{internal['id']}", client)
    assert hidden.status_code == 404
    across = (await projects.call("GET", "/api/v1/tasks", client, limit=200)).json()["items"]
    assert {t["projectId"] for t in across} == {mine["id"]} and len(across) == 3
    refused = await projects.call(
        "PATCH", f"/api/v1/tasks/{tasks['items'][0]['id']}", client, {"status": "COMPLETED"}
    )
    assert refused.status_code == 403

    # a user who becomes a CLIENT later joins too (and an event tells chat)
    later = await projects.user(venue, Role.STAFF, email=email)
    promoted = UserRoleChanged(
        user_id=later.user_id,
        venue_id=venue,
        email=email,
        role=Role.CLIENT,
        active=True,
        previous_role=Role.STAFF,
    )
    await projects.publish(promoted, later.user_id)

    async def joined():
        got = (await projects.call("GET", f"/api/v1/projects/{mine['id']}", admin)).json()
        return got if len(got["clientIds"]) == 2 else None

    got = await eventually(joined)
    assert sorted(got["clientIds"]) == sorted([client.user_id, later.user_id])
    updated = await project_events.wait_for(mine["id"], 2)
    assert updated[-1][1].type == "gala.project.updated.v1"


async def test_the_portal_shows_the_summary_behind_the_link_until_it_is_rotated(projects):
    venue, admin = projects.new_venue()
    project = await projects.win(venue)
    link = project["clientLink"]

    portal = await projects.client.get(f"/api/v1/portal/{link}")  # no identity at all
    assert portal.status_code == 200, portal.text
    body = portal.json()
    assert body["name"] == "Smith wedding" and body["status"] == "ACTIVE"
    assert [t["title"] for t in body["tasks"]] == ["Menu tasting", "Floor plan", "Final headcount"]
    assert not INTERNAL_FIELDS & set(body)
    assert set(body["tasks"][0]) == {"title", "description", "status", "dueDate", "completedAt"}

    for wrong in (link[:-1] + ("A" if link[-1] != "A" else "B"), "x", "y" * 500):
        missing = await projects.client.get(f"/api/v1/portal/{wrong}")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")

    sales = projects.member(venue, Role.SALES)
    rotate = f"/api/v1/projects/{project['id']}/client-link/rotate"
    assert (await projects.call("POST", rotate, sales)).status_code == 403
    rotated = await projects.call("POST", rotate, admin)
    assert rotated.status_code == 200
    new_link = rotated.json()["clientLink"]
    assert new_link != link and len(new_link) >= 43
    assert (await projects.client.get(f"/api/v1/portal/{link}")).status_code == 404
    assert (await projects.client.get(f"/api/v1/portal/{new_link}")).status_code == 200


async def test_client_ids_set_by_hand_must_be_client_users_of_the_venue(projects):
    venue, admin = projects.new_venue()
    project = await projects.win(venue)
    client = await projects.user(venue, Role.CLIENT)
    staff = await projects.user(venue, Role.STAFF)
    path = f"/api/v1/projects/{project['id']}"
    for wrong in (staff.user_id, "nobody"):
        refused = await projects.call("PATCH", path, admin, {"clientIds": [wrong]})
        assert refused.status_code == 422 and refused.json()["userId"] == wrong
    ok = await projects.call("PATCH", path, admin, {"clientIds": [client.user_id]})
    assert ok.status_code == 200 and ok.json()["clientIds"] == [client.user_id]
    assert (await projects.call("GET", path, client)).status_code == 200
    # a client may be given a client-visible task of their project, never an internal one
    tasks = (await projects.call("GET", f"{path}/tasks", admin)).json()["items"]
    visible = next(t for t in tasks if not t["isInternal"])
    internal = next(t for t in tasks if t["isInternal"])
    assign = {"assigneeId": client.user_id}
    given = await projects.call("PATCH", f"/api/v1/tasks/{visible['id']}", admin, assign)
    assert given.status_code == 200
    refused = await projects.call("PATCH", f"/api/v1/tasks/{internal['id']}", admin, assign)
    assert refused.status_code == 422
    hide = await projects.call(
        "PATCH", f"/api/v1/tasks/{visible['id']}", admin, {"isInternal": True}
    )
    assert hide.status_code == 422
