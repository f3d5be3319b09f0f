"""A won opportunity becomes its project, exactly once, and follows the event's date."""

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from gala.contracts.pipeline import OpportunityUpdated
from gala.events.envelope import Envelope
from gala.identity import Role
from gala.testing import eventually

EVENT_DATE = datetime(2027, 6, 12, 15, 0, tzinfo=UTC)  # the conftest's won events' date

pytestmark = pytest.mark.asyncio(loop_scope="session")

WEDDING_TASKS = [
    ("Menu tasting", 60, False),
    ("Floor plan", 21, False),
    ("Final headcount", 14, False),
    ("Run sheet", 7, True),
    ("Staff and suppliers confirmed", 3, True),
]


def at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def tasks_of(projects, admin, project_id):
    response = await projects.call("GET", f"/api/v1/projects/{project_id}/tasks", admin)
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def test_a_won_opportunity_becomes_one_project_with_the_template_tasks(
    projects, project_events, task_events
):
    venue, admin = projects.new_venue()
    event = projects.won_event(venue, name="  Smith   wedding ")
    for event_id in ("first-delivery", "first-delivery", "another-path"):
        await projects.publish(event, event.opportunity_id, f"{event.opportunity_id}-{event_id}")
    project = await projects.project_of(venue, event.opportunity_id)

    assert project["name"] == "Smith wedding"
    assert project["status"] == "ACTIVE"
    assert project["opportunityId"] == event.opportunity_id
    assert project["contactId"] == event.contact_id
    assert at(project["startDate"]) == EVENT_DATE
    assert at(project["endDate"]) == EVENT_DATE + timedelta(hours=12)
    assert len(project["clientLink"]) >= 43  # 256 random bits, URL-safe
    tasks = await tasks_of(projects, admin, project["id"])
    assert [(t["title"], t["isInternal"]) for t in tasks] == [
        (title, internal) for title, _, internal in WEDDING_TASKS
    ]
    assert [t["position"] for t in tasks] == list(range(5))
    assert [at(t["dueDate"]) for t in tasks] == [
        EVENT_DATE - timedelta(days=d) for _, d, _ in WEDDING_TASKS
    ]
    assert all(t["dueFollowsEvent"] and t["assigneeId"] is None for t in tasks)

    # however often the event arrives: one project, one created event, five task events
    created = await project_events.wait_for(project["id"], 1)
    await asyncio.sleep(1.5)
    assert len(project_events.of(project["id"])) == 1
    _, envelope = created[0]
    assert envelope.type == "gala.project.created.v1"
    assert envelope.venueid == venue
    assert envelope.source == "/gala/projects"
    data = json.loads(envelope.data)
    assert data["opportunityId"] == event.opportunity_id
    assert "clientLink" not in data
    for task in tasks:
        assert await task_events.types(task["id"], 1) == ["gala.task.created.v1"]
    listed = await projects.call(
        "GET", "/api/v1/projects", admin, opportunityId=event.opportunity_id
    )
    assert [p["id"] for p in listed.json()["items"]] == [project["id"]]


async def test_an_event_type_without_a_template_uses_the_default_one(projects):
    venue, admin = projects.new_venue()
    project = await projects.win(venue, event_type="Birthday party")
    tasks = await tasks_of(projects, admin, project["id"])
    assert [t["title"] for t in tasks] == [
        "Event details confirmed",
        "Final headcount",
        "Run sheet",
    ]
    assert at(project["endDate"]) - at(project["startDate"]) == timedelta(hours=8)


async def test_a_new_event_date_moves_the_project_and_the_tasks_nobody_redated(projects):
    venue, admin = projects.new_venue()
    won = projects.won_event(venue)
    await projects.publish(won, won.opportunity_id)
    project = await projects.project_of(venue, won.opportunity_id)
    tasks = await tasks_of(projects, admin, project["id"])
    pinned = datetime(2027, 5, 1, 9, 0, tzinfo=UTC)
    response = await projects.call(
        "PATCH", f"/api/v1/tasks/{tasks[0]['id']}", admin, {"dueDate": pinned.isoformat()}
    )
    assert response.status_code == 200, response.text
    assert response.json()["dueFollowsEvent"] is False

    moved_to = EVENT_DATE + timedelta(days=10)
    fields = won.model_dump(exclude={"won_at", "outcome"})
    later = OpportunityUpdated(**{**fields, "event_date": moved_to})
    await projects.publish(later, won.opportunity_id)

    async def moved():
        got = (await projects.call("GET", f"/api/v1/projects/{project['id']}", admin)).json()
        return got if at(got["startDate"]) == moved_to else None

    got = await eventually(moved)
    assert at(got["endDate"]) == moved_to + timedelta(hours=12)
    after = await tasks_of(projects, admin, project["id"])
    assert at(after[0]["dueDate"]) == pinned
    assert at(after[1]["dueDate"]) == moved_to - timedelta(days=21)
    assert at(after[4]["dueDate"]) == moved_to - timedelta(days=3)


async def test_an_older_change_arriving_late_is_ignored(projects):
    venue, admin = projects.new_venue()
    project = await projects.win(venue)
    event = projects.won_event(venue)  # only to build an update for the same opportunity
    fields = event.model_dump(exclude={"won_at", "outcome"})
    fields["opportunity_id"] = project["opportunityId"]
    stale = OpportunityUpdated(**{**fields, "event_date": EVENT_DATE + timedelta(days=40)})
    # published with a time before the project was made: an old change
    runtime = projects.runtime
    envelope = Envelope(
        id="stale-" + project["id"],
        type=stale.TYPE,
        source="/gala/test",
        subject=project["opportunityId"],
        time=datetime.now(UTC) - timedelta(hours=1),
        data=stale.to_json(),
        venueid=venue,
    )
    await runtime.publisher.publish(stale.TOPIC, envelope)
    marker = projects.won_event(venue)  # a later event, to know the stale one was handled
    await projects.publish(marker, marker.opportunity_id)
    await projects.project_of(venue, marker.opportunity_id)
    await asyncio.sleep(1)
    got = (await projects.call("GET", f"/api/v1/projects/{project['id']}", admin)).json()
    assert at(got["startDate"]) == EVENT_DATE


async def test_staff_read_projects_but_only_managers_change_them(projects):
    venue, admin = projects.new_venue()
    project = await projects.win(venue)
    path = f"/api/v1/projects/{project['id']}"
    staff = await projects.user(venue, Role.STAFF)
    given = await projects.call(
        "POST", f"{path}/tasks", admin, {"title": "Usher", "assigneeId": staff.user_id}
    )
    assert given.status_code == 201
    for member in (projects.member(venue, Role.SALES), staff):
        assert (await projects.call("GET", path, member)).status_code == 200
        refused = await projects.call("PATCH", path, member, {"name": "Mine now"})
        assert refused.status_code == 403
        assert refused.headers["content-type"].startswith("application/problem+json")
    manager = projects.member(venue, Role.PROJECT_MANAGER)
    renamed = await projects.call("PATCH", path, manager, {"name": "Smith & Jones wedding"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "Smith & Jones wedding"
    _, stranger = projects.new_venue()
    assert (await projects.call("GET", path, stranger)).status_code == 404


async def test_a_burst_of_won_opportunities_makes_one_project_each(projects, project_events):
    """Won events arriving together are made in one insert: still one project per
    opportunity (an event delivered twice in the burst too), the contacts' client users
    in them, and each project's created event caused by the event that won it."""
    venue, admin = projects.new_venue()
    email = f"burst-{uuid.uuid4().hex[:6]}@wed.example"
    contact_id = await projects.contact(venue, email)
    client = await projects.user(venue, Role.CLIENT, email=email)
    events = [projects.won_event(venue) for _ in range(40)]
    events.append(projects.won_event(venue, contact_id=contact_id))
    ids = await asyncio.gather(*(projects.publish(e, e.opportunity_id) for e in events))
    again = await projects.publish(events[3], events[3].opportunity_id, ids[3])  # redelivery
    assert again == ids[3]

    made = [await projects.project_of(venue, e.opportunity_id) for e in events]
    assert made[-1]["clientIds"] == [client.user_id]
    assert all(project["clientIds"] == [] for project in made[:-1])
    for project, event_id in zip(made, ids, strict=True):
        created = await project_events.wait_for(project["id"], 1)
        assert created[0][1].causationid == event_id
    await asyncio.sleep(1.5)
    assert all(len(project_events.of(project["id"])) == 1 for project in made)
    listed = await projects.call("GET", "/api/v1/projects", admin, limit=100)
    assert len(listed.json()["items"]) == len(events)
