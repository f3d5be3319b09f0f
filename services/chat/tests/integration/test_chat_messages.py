"""A project's conversation over HTTP: who takes part, history, resume, read markers,
unread counts, and the system messages other services' events become."""

import asyncio
import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from gala.contracts.billing import PaymentDue
from gala.contracts.chat import MESSAGE_TOPIC
from gala.contracts.contacts import UserDeactivated, UserRoleChanged
from gala.contracts.projects import ProjectUpdated, TaskAssigned, TaskDeleted
from gala.identity import Role
from gala.testing import TopicTail, envelope_of_event, eventually

pytestmark = pytest.mark.asyncio(loop_scope="session")


def messages_of(project_id: str) -> str:
    return f"/api/v1/projects/{project_id}/messages"


async def send(chat, who, project_id, content="Hello!", **body):
    return await chat.call("POST", messages_of(project_id), who, {"content": content, **body})


async def test_only_the_client_the_team_and_assigned_staff_take_part(chat):
    venue, admin = chat.new_venue()
    client = chat.client_of(venue)
    project_id = await chat.project(venue, [client])
    staff = chat.member(venue, Role.STAFF)
    task_id = await chat.assign(venue, project_id, staff)
    path = messages_of(project_id)

    async def staff_in():
        return (await chat.call("GET", path, staff)).status_code == 200

    await eventually(staff_in)
    for who in (admin, client, chat.member(venue, Role.PROJECT_MANAGER), staff):
        assert (await send(chat, who, project_id)).status_code == 201
    for who in (
        chat.member(venue, Role.STAFF),  # not assigned
        chat.member(venue, Role.SALES),
        chat.client_of(venue),  # another client
    ):
        refused = await chat.call("GET", path, who)
        assert refused.status_code == 403
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert (await send(chat, who, project_id)).status_code == 403
    _, stranger = chat.new_venue()
    assert (await chat.call("GET", path, stranger)).status_code == 404
    assert (await chat.call("GET", messages_of("no-such-project"), admin)).status_code == 404

    await chat.unassign(venue, project_id, task_id, staff)

    async def staff_out():
        return (await chat.call("GET", path, staff)).status_code == 403

    await eventually(staff_out)
    # a deactivated user takes part no more, whatever their token says
    gone = UserDeactivated(
        user_id=client.user_id, venue_id=venue, email="c@wed.example", role=Role.CLIENT,
        active=False,
    )  # fmt: skip
    await chat.publish(gone, client.user_id)

    async def client_out():
        return (await chat.call("GET", path, client)).status_code == 403

    await eventually(client_out)


async def test_messages_are_numbered_kept_as_sent_and_resumed_in_order(chat, infra):
    venue, admin = chat.new_venue()
    client = chat.client_of(venue)
    project_id = await chat.project(venue, [client])
    tail = TopicTail(infra.kafka_bootstrap, MESSAGE_TOPIC)
    await tail.start()
    try:
        sent = [
            (await send(chat, who, project_id, text)).json()
            for who, text in [
                (client, "<b>Can we add a table?</b>"),
                (admin, "Of course."),
                (client, "Thanks & bye"),
            ]
        ]
        assert [m["seq"] for m in sent] == [2, 3, 4]  # 1: the "project created" message
        assert sent[0]["content"] == "<b>Can we add a table?</b>"  # as sent, never HTML
        assert sent[0]["senderRole"] == "CLIENT" and sent[0]["messageType"] == "text"

        first = await chat.call("GET", messages_of(project_id), client, limit=2)
        assert [m["seq"] for m in first.json()["items"]] == [4, 3]
        rest = await chat.call(
            "GET", messages_of(project_id), client, limit=2, cursor=first.json()["nextCursor"]
        )
        assert [m["seq"] for m in rest.json()["items"]] == [2, 1]
        assert rest.json()["items"][1]["messageType"] == "system"
        missed = await chat.call("GET", f"{messages_of(project_id)}/since", client, after=2)
        assert [m["seq"] for m in missed.json()["items"]] == [3, 4]

        envelope = (await tail.wait_for(sent[0]["id"], 1))[0][1]
        data = json.loads(envelope.data)
        assert envelope.type == "gala.message.sent.v1"
        assert (data["senderRole"], data["sequence"], data["contactId"]) == (
            "CLIENT",
            2,
            "contact-1",
        )
    finally:
        await tail.stop()


@pytest.mark.parametrize(
    "body",
    [
        {"content": ""},
        {"content": "   "},
        {"content": "x" * 4001},
        {"content": "see file", "messageType": "file"},
        {"content": "hi", "messageType": "system"},
        {"content": "hi", "unknown": 1},
    ],
)
async def test_bad_messages_are_refused_and_change_nothing(chat, body):
    venue, admin = chat.new_venue()
    project_id = await chat.project(venue, [])
    refused = await chat.call("POST", messages_of(project_id), admin, body)
    assert refused.status_code == 422
    items = (await chat.call("GET", messages_of(project_id), admin)).json()["items"]
    assert [m["messageType"] for m in items] == ["system"]


async def test_a_file_message_points_to_a_document(chat):
    venue, admin = chat.new_venue()
    project_id = await chat.project(venue, [])
    body = {"content": "The contract", "messageType": "file", "metadata": {"documentId": "d-1"}}
    sent = await chat.call("POST", messages_of(project_id), admin, body)
    assert sent.status_code == 201 and sent.json()["metadata"] == {"documentId": "d-1"}


async def test_a_payment_due_event_delivered_twice_gives_one_system_message(chat):
    venue, admin = chat.new_venue()
    project_id = await chat.project(venue, [])
    due = PaymentDue(
        payment_id=str(uuid.uuid4()), venue_id=venue, opportunity_id="o-1",
        amount=Decimal("300.00"), currency="EUR", project_id=project_id, days_before=7,
    )  # fmt: skip
    event_id = str(uuid.uuid4())
    for _ in range(2):
        await chat.publish(due, due.payment_id, event_id)

    async def told():
        items = (await chat.call("GET", messages_of(project_id), admin)).json()["items"]
        return items if len(items) >= 2 else None

    items = await eventually(told)
    await asyncio.sleep(1)
    items = (await chat.call("GET", messages_of(project_id), admin)).json()["items"]
    assert [m["content"] for m in items] == [
        "Payment of 300.00 EUR is due soon.",
        "Project created: Smith wedding.",
    ]


async def test_unread_counts_follow_the_read_marker(chat):
    venue, admin = chat.new_venue()
    client = chat.client_of(venue)
    project_id = await chat.project(venue, [client])
    for text in ("one", "two"):
        await send(chat, client, project_id, text)

    async def counts(who):
        items = (await chat.call("GET", "/api/v1/messages/unread", who)).json()["items"]
        return {u["projectId"]: u["unread"] for u in items}

    assert (await counts(admin))[project_id] == 3  # the system message and two by the client
    assert (await counts(client))[project_id] == 1  # only the system message
    read = await chat.call("POST", f"{messages_of(project_id)}/read", admin, {"seq": 3})
    assert read.json() == {"projectId": project_id, "seq": 3}
    assert (await counts(admin))[project_id] == 0
    back = await chat.call("POST", f"{messages_of(project_id)}/read", admin, {"seq": 1})
    assert back.json()["seq"] == 3  # never moves back
    await send(chat, client, project_id, "three")
    assert (await counts(admin))[project_id] == 1
    assert project_id not in await counts(chat.client_of(venue))


async def _published_at(chat, event, subject: str, at: datetime) -> str:
    """Publish ``event`` as its service would have at ``at`` (a late or redelivered one)."""
    envelope = replace(envelope_of_event(event, subject), time=at)
    await chat.runtime.publisher.publish(event.TOPIC, envelope)
    return envelope.id


async def _handled(chat, subscription: str, event_id: str) -> None:
    async def done() -> bool:
        marker = f"{subscription}|{event_id}"
        return await chat.runtime.store["processed_events"].find_one({"_id": marker}) is not None

    await eventually(done)


async def test_the_copy_follows_projects_and_tasks_both_ways_newest_by_event_time(chat):
    venue, _ = chat.new_venue()
    client, gone = chat.client_of(venue), chat.client_of(venue)
    project_id = await chat.project(venue, [client, gone])
    path = messages_of(project_id)
    staff = chat.member(venue, Role.STAFF)
    now = datetime.now(UTC)

    def project(clients, kind=ProjectUpdated):
        return kind(
            project_id=project_id, venue_id=venue, opportunity_id="opportunity-1",
            contact_id="contact-1", name="Smith wedding", status="ACTIVE",
            start_date=now, end_date=now + timedelta(hours=12),
            client_ids=[c.user_id for c in clients],
        )  # fmt: skip

    def task(kind, assignee):
        return kind(
            task_id="task-1", project_id=project_id, venue_id=venue, title="Floor plan",
            status="TODO", assignee_id=assignee.user_id if assignee else None, position=0,
        )  # fmt: skip

    # a client dropped by a shorter client list is refused at once
    await _handled(
        chat,
        "conversations.project",
        await _published_at(chat, project([client]), project_id, now + timedelta(seconds=10)),
    )
    assert (await chat.call("GET", path, gone)).status_code == 403
    assert (await chat.call("GET", path, client)).status_code == 200
    # an older project event (late, or delivered again) does not bring them back
    late = await _published_at(chat, project([client, gone]), project_id, now)
    await _handled(chat, "conversations.project", late)
    assert (await chat.call("GET", path, gone)).status_code == 403

    # a task assigned, then deleted; its older assignment arriving late changes nothing
    assigned = task(TaskAssigned, staff)
    first = await _published_at(chat, assigned, "task-1", now + timedelta(seconds=1))
    await _handled(chat, "conversations.assignee", first)
    assert (await chat.call("GET", path, staff)).status_code == 200
    deleted = task(TaskDeleted, staff)
    await _handled(
        chat,
        "conversations.assignee",
        await _published_at(chat, deleted, "task-1", now + timedelta(seconds=3)),
    )
    assert (await chat.call("GET", path, staff)).status_code == 403
    again = await _published_at(chat, assigned, "task-1", now + timedelta(seconds=2))
    await _handled(chat, "conversations.assignee", again)
    assert (await chat.call("GET", path, staff)).status_code == 403


async def test_http_judges_a_caller_by_the_copy_of_the_user_too(chat):
    """The gateway's token may be older than chat's copy (it caches who a user is)."""
    venue, admin = chat.new_venue()
    manager = chat.member(venue, Role.PROJECT_MANAGER)
    project_id = await chat.project(venue, [chat.client_of(venue)])
    path = messages_of(project_id)
    assert (await send(chat, admin, project_id, "Welcome")).status_code == 201

    def change(who, role, previous):
        return UserRoleChanged(
            user_id=who.user_id, venue_id=venue, email=f"{who.user_id}@venue.example",
            role=role, previous_role=previous, active=True,
        )  # fmt: skip

    # demoted to SALES: refused, though the token still says PROJECT_MANAGER
    event_id = await chat.publish(
        change(manager, Role.SALES, Role.PROJECT_MANAGER), manager.user_id
    )
    await _handled(chat, "users.copy", event_id)
    assert (await chat.call("GET", path, manager)).status_code == 403
    assert (await send(chat, manager, project_id)).status_code == 403
    assert (await chat.call("GET", "/api/v1/messages/unread", manager)).json()["items"] == []
    # an ADMIN made PROJECT_MANAGER still takes part, and writes as one
    event_id = await chat.publish(change(admin, Role.PROJECT_MANAGER, Role.ADMIN), admin.user_id)
    await _handled(chat, "users.copy", event_id)
    sent = await send(chat, admin, project_id, "Still here")
    assert sent.status_code == 201 and sent.json()["senderRole"] == "PROJECT_MANAGER"
