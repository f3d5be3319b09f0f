"""The published user events and the HTTP bodies: names, shapes, strictness."""

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from contacts.bootstrap import service
from contacts.users.domain import UNSET, User, UserPatch
from contacts.users.schemas import CreateUserIn, InternalCreateUserIn, UpdateUserIn, UserOut
from gala.contracts.contacts import (
    USER_EVENTS,
    UserCreated,
    UserDeactivated,
    UserReactivated,
    UserRoleChanged,
    UserUpdated,
)
from gala.events import registry
from gala.identity import Role

# --- contracts ------------------------------------------------------------------------


def test_user_event_types_and_topic():
    assert {e.TYPE: e.TOPIC for e in USER_EVENTS} == {
        "gala.user.created.v1": "gala.contacts.user",
        "gala.user.updated.v1": "gala.contacts.user",
        "gala.user.role_changed.v1": "gala.contacts.user",
        "gala.user.deactivated.v1": "gala.contacts.user",
        "gala.user.reactivated.v1": "gala.contacts.user",
    }
    for event in (UserCreated, UserUpdated, UserRoleChanged, UserDeactivated, UserReactivated):
        assert registry.get(event.TYPE) is event


def test_user_event_payloads_are_camel_case_json_with_what_consumers_need():
    event = UserRoleChanged(
        user_id="u-1",
        venue_id="v-1",
        email="ana@venue.example",
        name="Ana",
        role=Role.SALES,
        previous_role=Role.STAFF,
        active=True,
    )
    assert json.loads(event.to_json()) == {
        "userId": "u-1",
        "venueId": "v-1",
        "email": "ana@venue.example",
        "name": "Ana",
        "image": None,
        "role": "SALES",
        "previousRole": "STAFF",
        "active": True,
    }
    assert registry.get("gala.user.role_changed.v1").from_json(event.to_json()) == event


def test_the_service_declares_what_it_publishes_and_stores():
    assert set(USER_EVENTS) <= set(service.publishes)
    assert "gala.contacts.user" in service.topics()
    assert "users" in service.outbox_collections
    users = {index.index_name: index for index in service.indexes if index.collection == "users"}
    assert [k for k, _ in users["users_auth_subject"].keys] == ["authSubject"]
    assert users["users_auth_subject"].unique
    assert [k for k, _ in users["users_venue_email"].keys] == ["venueId", "email"]
    assert users["users_venue_email"].unique
    assert [k for k, _ in users["users_venue_role"].keys] == ["venueId", "role"]
    assert [k for k, _ in users["users_venue_id"].keys] == ["venueId", "_id"]


# --- request bodies -------------------------------------------------------------------


def test_unknown_and_snake_case_fields_are_refused():
    with pytest.raises(ValidationError, match="extra"):
        UpdateUserIn.model_validate({"name": "x", "email": "x@y.example"})
    with pytest.raises(ValidationError):
        CreateUserIn.model_validate({"auth_subject": "s", "email": "a@b.example", "role": "STAFF"})
    with pytest.raises(ValidationError, match="extra"):
        CreateUserIn.model_validate(
            {"authSubject": "s", "email": "a@b.example", "role": "STAFF", "venueId": "v-2"}
        )
    with pytest.raises(ValidationError, match="extra"):
        InternalCreateUserIn.model_validate(
            {
                "venueId": "v",
                "authSubject": "s",
                "email": "a@b.example",
                "role": "STAFF",
                "active": False,
            }
        )


def test_a_patch_knows_what_was_sent():
    assert UpdateUserIn.model_validate({}).to_patch() == UserPatch()
    patch = UpdateUserIn.model_validate({"name": None, "role": "SALES"}).to_patch()
    assert patch == UserPatch(name=None, image=UNSET, role=Role.SALES, active=UNSET)


@pytest.mark.parametrize(
    "body",
    [
        {"role": None},
        {"active": None},
        {"active": "false"},
        {"active": 0},
        {"role": "OWNER"},
        {"name": 5},
    ],
)
def test_a_patch_refuses_nulls_for_role_and_active_and_loose_types(body):
    with pytest.raises(ValidationError):
        UpdateUserIn.model_validate(body)


def test_email_verified_needs_a_time_zone():
    base = {"authSubject": "s", "email": "a@b.example", "role": "STAFF"}
    with pytest.raises(ValidationError):
        CreateUserIn.model_validate({**base, "emailVerified": "2026-01-01T10:00:00"})
    ok = CreateUserIn.model_validate({**base, "emailVerified": "2026-01-01T10:00:00+02:00"})
    assert ok.to_new_user().email_verified == datetime(2026, 1, 1, 8, tzinfo=UTC)


# --- response bodies ------------------------------------------------------------------


def test_a_user_is_camel_case_json_with_iso_datetimes():
    now = datetime(2026, 5, 1, 10, 0, 0, 123000, tzinfo=UTC)
    user = User.register(
        venue_id="v-1", auth_subject="s-1", email="a@b.example", role=Role.CLIENT, now=now
    )
    body = json.loads(UserOut.of(user).model_dump_json())
    assert body == {
        "id": user.id,
        "authSubject": "s-1",
        "email": "a@b.example",
        "name": None,
        "image": None,
        "emailVerified": None,
        "role": "CLIENT",
        "venueId": "v-1",
        "active": True,
        "createdAt": "2026-05-01T10:00:00.123000Z",
        "updatedAt": "2026-05-01T10:00:00.123000Z",
    }
    assert datetime.fromisoformat(body["createdAt"]) == now
