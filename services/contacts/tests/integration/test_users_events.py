"""Every user write announces itself on gala.contacts.user, in the same write (the outbox)."""

import json

from cloudevents.core.bindings.kafka import KafkaMessage, from_binary
from cloudevents.core.formats.json import JSONFormat

from gala.contracts.contacts import USER_TOPIC
from gala.events.outbox import OUTBOX, PENDING
from gala.identity import Role
from gala.testing import eventually

CREATED = "gala.user.created.v1"
UPDATED = "gala.user.updated.v1"
ROLE_CHANGED = "gala.user.role_changed.v1"
DEACTIVATED = "gala.user.deactivated.v1"
REACTIVATED = "gala.user.reactivated.v1"


async def test_each_write_publishes_its_cloudevent(contacts, user_events):
    venue, admin = await contacts.new_venue()
    user, _ = await contacts.add_user(admin, Role.STAFF, name="Sam", email="sam@people.example")
    path = f"/api/v1/users/{user['id']}"
    headers = contacts.headers(admin)
    for body in (
        {"name": "Samuel"},
        {"role": "SALES"},
        {"active": False},
        {"active": True},
        {"image": "https://img.example/s.png"},
    ):
        response = await contacts.client.patch(path, json=body, headers=headers)
        assert response.status_code == 200, response.text

    events = await user_events.wait_for(user["id"], 6)
    assert [envelope.type for _, envelope in events] == [
        CREATED,
        UPDATED,
        ROLE_CHANGED,
        DEACTIVATED,
        REACTIVATED,
        UPDATED,
    ]
    for record, envelope in events:
        assert record.topic == USER_TOPIC
        assert record.key == user["id"].encode()  # one user's events share a partition
        assert envelope.subject == user["id"]
        assert envelope.venueid == venue
        assert envelope.source == "/gala/contacts"
        assert envelope.datacontenttype == "application/json"
    payloads = [json.loads(envelope.data) for _, envelope in events]
    assert payloads[0] == {
        "userId": user["id"],
        "venueId": venue,
        "email": "sam@people.example",
        "name": "Sam",
        "image": None,
        "role": "STAFF",
        "active": True,
    }
    assert payloads[1]["name"] == "Samuel"
    assert (payloads[2]["role"], payloads[2]["previousRole"]) == ("SALES", "STAFF")
    assert payloads[3]["active"] is False
    assert payloads[4]["active"] is True
    assert payloads[5] == {**payloads[0], "name": "Samuel", "role": "SALES",
                           "image": "https://img.example/s.png"}  # fmt: skip

    # any CloudEvents SDK reads them
    record, envelope = events[2]
    message = KafkaMessage(headers=dict(record.headers), key=record.key, value=record.value)
    event = from_binary(message, JSONFormat())
    assert event.get_type() == ROLE_CHANGED
    assert event.get_subject() == user["id"]
    assert event.get_extension("venueid") == venue
    assert event.get_data()["previousRole"] == "STAFF"


async def test_internal_creation_publishes_user_created(contacts, user_events):
    venue, admin = await contacts.new_venue()  # created through the internal API
    (_, envelope), = await user_events.wait_for(admin.user_id, 1)  # fmt: skip
    assert envelope.type == CREATED
    assert envelope.venueid == venue
    assert json.loads(envelope.data)["role"] == "ADMIN"


async def test_one_patch_with_several_changes_publishes_each_in_order(contacts, user_events):
    _, admin = await contacts.new_venue()
    user, _ = await contacts.add_user(admin, Role.STAFF)
    response = await contacts.client.patch(
        f"/api/v1/users/{user['id']}",
        json={"name": "All at once", "role": "PROJECT_MANAGER", "active": False},
        headers=contacts.headers(admin),
    )
    assert response.status_code == 200
    events = await user_events.wait_for(user["id"], 4)
    assert [envelope.type for _, envelope in events] == [
        CREATED,
        UPDATED,
        ROLE_CHANGED,
        DEACTIVATED,
    ]
    last = json.loads(events[-1][1].data)
    assert (last["name"], last["role"], last["active"]) == ("All at once", "PROJECT_MANAGER", False)


async def test_refused_and_empty_writes_publish_nothing(contacts, user_events):
    _, admin = await contacts.new_venue()
    user, principal = await contacts.add_user(admin, Role.STAFF, name="Same")
    path = f"/api/v1/users/{user['id']}"
    as_admin, as_self = contacts.headers(admin), contacts.headers(principal)

    nothing = [
        (as_admin, {}),  # no change
        (as_admin, {"name": "Same", "role": "STAFF", "active": True}),  # no change either
        (as_admin, {"name": "x", "email": "x@y.example"}),  # 422 unknown field
        (as_admin, {"name": "x", "image": "ftp://nope"}),  # 422 invalid value
        (as_self, {"role": "ADMIN"}),  # 403
    ]
    for headers, body in nothing:
        response = await contacts.client.patch(path, json=body, headers=headers)
        assert response.status_code in (200, 403, 422)
    duplicate = await contacts.client.post(
        "/api/v1/users",
        json={"authSubject": user["authSubject"], "email": "o@people.example", "role": "STAFF"},
        headers=as_admin,
    )
    assert duplicate.status_code == 409
    last_admin = await contacts.client.patch(
        f"/api/v1/users/{admin.user_id}", json={"active": False}, headers=as_admin
    )
    assert last_admin.status_code == 409

    # a change after all of those: the user's events are ordered, so if any of the
    # refused writes had published, it would show between these two
    sentinel = await contacts.client.patch(path, json={"name": "Sentinel"}, headers=as_admin)
    assert sentinel.status_code == 200
    assert await user_events.types(user["id"], 2) == [CREATED, UPDATED]
    assert json.loads((await user_events.wait_for(user["id"], 2))[1][1].data)["name"] == "Sentinel"
    # and the last admin, refused, published only its creation
    other = await contacts.client.patch(
        f"/api/v1/users/{admin.user_id}", json={"name": "Admin sentinel"}, headers=as_admin
    )
    assert other.status_code == 200
    assert await user_events.types(admin.user_id, 2) == [CREATED, UPDATED]


async def test_the_event_rides_in_the_users_document_until_relayed(contacts):
    _, admin = await contacts.new_venue()
    user, _ = await contacts.add_user(admin)
    users = contacts.runtime.store["users"]

    async def relayed() -> bool:
        document = await users.find_one({"_id": user["id"]})
        return document is not None and document[OUTBOX] == [] and PENDING not in document

    await eventually(relayed)
    # and reads never show the pending events
    response = await contacts.client.get(
        f"/api/v1/users/{user['id']}", headers=contacts.headers(admin)
    )
    assert not any(key.startswith("_") for key in response.json())
