"""The User aggregate's rules, without infrastructure."""

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from contacts.users.domain import (
    LastActiveAdmin,
    User,
    UserAccessDenied,
    UserNotFound,
    UserPatch,
    ensure_can_edit,
    ensure_can_list,
    ensure_can_view,
    normalize_email,
    normalize_image,
)
from gala.contracts.contacts import (
    UserCreated,
    UserDeactivated,
    UserReactivated,
    UserRoleChanged,
    UserUpdated,
)
from gala.errors import InvalidInput
from gala.identity import Principal, Role

VENUE = "venue-1"
T0 = datetime(2026, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)


def new_user(role: Role = Role.STAFF, **overrides) -> User:
    values = {
        "venue_id": VENUE,
        "auth_subject": f"sub-{uuid.uuid4().hex[:8]}",
        "email": "ana@venue.example",
        "role": role,
        "now": T0,
        **overrides,
    }
    user = User.register(**values)
    user.collect_events()
    return user


def admin(venue: str = VENUE, user_id: str = "admin-1") -> Principal:
    return Principal(user_id=user_id, venue_id=venue, role=Role.ADMIN)


def as_principal(user: User) -> Principal:
    return Principal(user_id=user.id, venue_id=user.venue_id, role=user.role)


# --- registering ----------------------------------------------------------------------


def test_register_normalises_and_records_user_created():
    user = User.register(
        venue_id=VENUE,
        auth_subject="google-oauth2|42",
        email="  Ana.Perez@Venue.Example ",
        name="  Ana   Pérez ",
        image=" https://img.example/a.png ",
        email_verified=datetime(2026, 4, 1, 12, 0, 0, 999999, tzinfo=timezone(timedelta(hours=2))),
        role=Role.SALES,
        now=T0,
    )
    assert uuid.UUID(user.id).version == 4
    assert user.email == "ana.perez@venue.example"
    assert user.name == "Ana Pérez"
    assert user.image == "https://img.example/a.png"
    assert user.email_verified == datetime(2026, 4, 1, 10, 0, 0, 999000, tzinfo=UTC)
    assert user.active is True
    assert user.created_at == user.updated_at == datetime(2026, 5, 1, 10, 0, 0, 123000, tzinfo=UTC)
    (event,) = user.collect_events()
    assert event == UserCreated(
        user_id=user.id,
        venue_id=VENUE,
        email="ana.perez@venue.example",
        name="Ana Pérez",
        image="https://img.example/a.png",
        role=Role.SALES,
        active=True,
    )
    assert user.collect_events() == []  # handed over once


@pytest.mark.parametrize(
    "email",
    [
        "",
        "ana",
        "ana@",
        "@venue.example",
        "ana@venue",
        "ana @venue.example",
        "a@b@c.example",
        "ana@venue..example",
        "x" * 65 + "@venue.example",
        "a@" + "b" * 250 + ".example",
    ],
)
def test_an_invalid_email_is_refused(email):
    with pytest.raises(InvalidInput):
        normalize_email(email)


@pytest.mark.parametrize(
    "image",
    [
        "ftp://img.example/a.png",
        "javascript:alert(1)",
        "/relative.png",
        "https://",
        "img.png",
        "https://img.example/a b.png",
        "https://" + "a" * 2050 + ".example",
    ],
)
def test_an_image_must_be_an_http_url(image):
    with pytest.raises(InvalidInput):
        normalize_image(image)


def test_a_blank_name_or_image_is_none():
    user = new_user(name="   ", image="  ")
    assert user.name is None and user.image is None


@pytest.mark.parametrize("subject", ["", " sub", "sub ", "sub\n1", "s" * 256])
def test_an_auth_subject_is_taken_exactly_and_must_be_plain(subject):
    with pytest.raises(InvalidInput):
        new_user(auth_subject=subject)


def test_a_naive_datetime_is_refused():
    with pytest.raises(InvalidInput):
        new_user(email_verified=datetime(2026, 1, 1))


def test_a_too_long_name_is_refused():
    with pytest.raises(InvalidInput):
        new_user(name="n" * 201)


# --- changing -------------------------------------------------------------------------


def test_a_profile_change_records_user_updated():
    user = new_user()
    events = user.update(UserPatch(name="Ana B", image=None), actor=admin(), now=T1)
    assert [type(e) for e in events] == [UserUpdated]
    assert events[0].name == "Ana B"
    assert user.updated_at == T1.replace(microsecond=123000)
    assert user.collect_events() == events


def test_a_role_change_records_the_previous_role():
    user = new_user(Role.STAFF)
    (event,) = user.update(UserPatch(role=Role.PROJECT_MANAGER), actor=admin(), now=T1)
    assert isinstance(event, UserRoleChanged)
    assert event.previous_role is Role.STAFF
    assert event.role is Role.PROJECT_MANAGER
    assert user.role is Role.PROJECT_MANAGER


def test_deactivating_and_reactivating():
    user = new_user()
    (off,) = user.update(UserPatch(active=False), actor=admin(), now=T1)
    assert isinstance(off, UserDeactivated) and off.active is False
    (on,) = user.update(UserPatch(active=True), actor=admin(), now=T1)
    assert isinstance(on, UserReactivated) and on.active is True


def test_several_changes_record_one_event_each_in_order_the_last_with_the_final_state():
    user = new_user(Role.STAFF)
    events = user.update(
        UserPatch(name="New", role=Role.SALES, active=False), actor=admin(), now=T1
    )
    assert [type(e) for e in events] == [UserUpdated, UserRoleChanged, UserDeactivated]
    assert (events[0].role, events[0].active) == (Role.STAFF, True)  # state after step 1
    assert (events[1].role, events[1].active) == (Role.SALES, True)
    assert (events[2].name, events[2].role, events[2].active) == ("New", Role.SALES, False)


def test_no_change_records_nothing_and_keeps_updated_at():
    user = new_user(Role.STAFF, name="Ana")
    events = user.update(
        UserPatch(name=" Ana ", role=Role.STAFF, active=True), actor=admin(), now=T1
    )
    assert events == []
    assert user.updated_at == user.created_at
    assert user.update(UserPatch(), actor=admin(), now=T1) == []


def test_anyone_may_change_their_own_name_and_image():
    user = new_user(Role.CLIENT)
    events = user.update(
        UserPatch(name="Me", image="https://img.example/me.png"), actor=as_principal(user), now=T1
    )
    assert [type(e) for e in events] == [UserUpdated]


@pytest.mark.parametrize(
    "patch",
    [UserPatch(role=Role.ADMIN), UserPatch(active=False), UserPatch(name="x", role=Role.ADMIN)],
)
@pytest.mark.parametrize("role", [Role.SALES, Role.PROJECT_MANAGER, Role.STAFF, Role.CLIENT])
def test_only_an_admin_changes_a_role_or_the_active_flag(role, patch):
    user = new_user(role, name="Before")
    before = (user.name, user.role, user.active)
    with pytest.raises(UserAccessDenied):
        user.update(patch, actor=as_principal(user), now=T1)
    assert (user.name, user.role, user.active) == before  # all or nothing
    assert user.pending_events == []


def test_sending_ones_current_role_and_flag_unchanged_is_not_a_change():
    user = new_user(Role.SALES)
    events = user.update(
        UserPatch(name="Sam", role=Role.SALES, active=True), actor=as_principal(user), now=T1
    )
    assert [type(e) for e in events] == [UserUpdated]


@pytest.mark.parametrize("role", [Role.SALES, Role.PROJECT_MANAGER, Role.STAFF, Role.CLIENT])
def test_a_non_admin_cannot_change_someone_else(role):
    user = new_user()
    other = Principal(user_id="someone-else", venue_id=VENUE, role=role)
    with pytest.raises(UserAccessDenied):
        user.update(UserPatch(name="x"), actor=other, now=T1)
    with pytest.raises(UserAccessDenied):
        ensure_can_edit(other, user.id)


def test_an_actor_of_another_venue_does_not_find_the_user():
    user = new_user()
    with pytest.raises(UserNotFound):
        user.update(UserPatch(name="x"), actor=admin(venue="venue-2"), now=T1)


def test_invalid_input_changes_nothing():
    user = new_user(Role.STAFF, name="Before")
    with pytest.raises(InvalidInput):
        user.update(UserPatch(name="After", image="ftp://x.example/a"), actor=admin(), now=T1)
    assert user.name == "Before"
    assert user.pending_events == []


# --- the last active admin ------------------------------------------------------------


@pytest.mark.parametrize(
    ("patch", "removes"),
    [
        (UserPatch(role=Role.SALES), True),
        (UserPatch(active=False), True),
        (UserPatch(role=Role.SALES, active=False), True),
        (UserPatch(role=Role.ADMIN, active=True), False),
        (UserPatch(name="x"), False),
    ],
)
def test_which_changes_remove_an_active_admin(patch, removes):
    assert new_user(Role.ADMIN).removes_active_admin(patch) is removes


def test_changes_of_an_inactive_admin_or_a_non_admin_remove_no_active_admin():
    inactive = new_user(Role.ADMIN)
    inactive.update(UserPatch(active=False), actor=admin(), now=T1, other_active_admins=1)
    assert not inactive.removes_active_admin(UserPatch(role=Role.SALES))
    assert not new_user(Role.SALES).removes_active_admin(UserPatch(active=False))


@pytest.mark.parametrize("patch", [UserPatch(role=Role.SALES), UserPatch(active=False)])
def test_the_last_active_admin_can_be_neither_demoted_nor_deactivated(patch):
    user = new_user(Role.ADMIN)
    with pytest.raises(LastActiveAdmin):
        user.update(patch, actor=as_principal(user), now=T1, other_active_admins=0)
    assert user.is_active_admin and user.pending_events == []
    events = user.update(patch, actor=as_principal(user), now=T1, other_active_admins=1)
    assert len(events) == 1 and not user.is_active_admin


def test_removing_an_admin_without_counting_the_others_is_a_programming_error():
    with pytest.raises(ValueError, match="count"):
        new_user(Role.ADMIN).update(UserPatch(active=False), actor=admin(), now=T1)


# --- who sees whom --------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.ADMIN, Role.SALES, Role.PROJECT_MANAGER, Role.STAFF])
def test_staff_roles_read_the_directory(role):
    principal = Principal(user_id="me", venue_id=VENUE, role=role)
    ensure_can_list(principal)
    ensure_can_view(principal, "someone-else")


def test_a_client_reads_only_themself():
    client = Principal(user_id="me", venue_id=VENUE, role=Role.CLIENT)
    with pytest.raises(UserAccessDenied):
        ensure_can_list(client)
    with pytest.raises(UserAccessDenied):
        ensure_can_view(client, "someone-else")
    ensure_can_view(client, "me")
