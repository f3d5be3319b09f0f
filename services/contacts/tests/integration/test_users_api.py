"""The public users API (/api/v1/users) on the real store and broker."""

import asyncio
import uuid

import pytest

from gala.identity import IDENTITY_HEADER, Principal, Role

PROBLEM = "application/problem+json"
STAFF_ROLES = [Role.ADMIN, Role.SALES, Role.PROJECT_MANAGER, Role.STAFF]


def assert_problem(response, status, type_=None):
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    if type_:
        assert body["type"] == f"urn:gala:problem:{type_}"
    return body


# --- reading --------------------------------------------------------------------------


async def test_me_is_the_callers_user(contacts):
    _, admin = await contacts.new_venue()
    user, me = await contacts.add_user(admin, Role.CLIENT, name="Cleo")
    response = await contacts.client.get("/api/v1/users/me", headers=contacts.headers(me))
    assert response.status_code == 200
    assert response.json() == user
    assert response.json()["name"] == "Cleo"


async def test_me_of_a_principal_without_a_user_is_404(contacts):
    venue, _ = await contacts.new_venue()
    ghost = Principal(user_id=str(uuid.uuid4()), venue_id=venue, role=Role.STAFF)
    response = await contacts.client.get("/api/v1/users/me", headers=contacts.headers(ghost))
    assert_problem(response, 404, "not-found")


async def test_a_user_of_another_venue_is_not_found_and_never_listed(contacts):
    venue_a, admin_a = await contacts.new_venue()
    _, admin_b = await contacts.new_venue()
    user_a, _ = await contacts.add_user(admin_a, Role.SALES)
    as_b = contacts.headers(admin_b)

    assert_problem(await contacts.client.get(f"/api/v1/users/{user_a['id']}", headers=as_b), 404)
    patched = await contacts.client.patch(
        f"/api/v1/users/{user_a['id']}", json={"name": "hijacked"}, headers=as_b
    )
    assert_problem(patched, 404)
    listed = await contacts.client.get("/api/v1/users?limit=200", headers=as_b)
    ids = {item["id"] for item in listed.json()["items"]}
    assert ids == {admin_b.user_id}
    assert all(item["venueId"] == admin_b.venue_id for item in listed.json()["items"])
    # a token naming venue B with venue A's user id finds nothing either
    forged = Principal(user_id=user_a["id"], venue_id=admin_b.venue_id, role=Role.SALES)
    me = await contacts.client.get("/api/v1/users/me", headers=contacts.headers(forged))
    assert_problem(me, 404)
    # and venue A still sees its user, unchanged
    seen = await contacts.client.get(
        f"/api/v1/users/{user_a['id']}", headers=contacts.headers(admin_a)
    )
    assert seen.json() == user_a
    assert seen.json()["venueId"] == venue_a


@pytest.mark.parametrize("role", STAFF_ROLES)
async def test_staff_roles_list_and_read_the_directory(contacts, role):
    _, admin = await contacts.new_venue()
    other, _ = await contacts.add_user(admin, Role.CLIENT)
    _, reader = await contacts.add_user(admin, role)
    listed = await contacts.client.get("/api/v1/users", headers=contacts.headers(reader))
    assert listed.status_code == 200
    assert other["id"] in {item["id"] for item in listed.json()["items"]}
    one = await contacts.client.get(
        f"/api/v1/users/{other['id']}", headers=contacts.headers(reader)
    )
    assert one.json() == other


async def test_a_client_cannot_list_and_reads_only_themself(contacts):
    _, admin = await contacts.new_venue()
    me, client = await contacts.add_user(admin, Role.CLIENT)
    as_client = contacts.headers(client)
    assert_problem(await contacts.client.get("/api/v1/users", headers=as_client), 403, "forbidden")
    other = await contacts.client.get(f"/api/v1/users/{admin.user_id}", headers=as_client)
    assert_problem(other, 403)
    # refused before looking: an id that does not exist answers the same
    missing = await contacts.client.get(f"/api/v1/users/{uuid.uuid4()}", headers=as_client)
    assert_problem(missing, 403)
    own = await contacts.client.get(f"/api/v1/users/{me['id']}", headers=as_client)
    assert own.json() == me


async def test_an_unknown_id_is_404(contacts):
    _, admin = await contacts.new_venue()
    response = await contacts.client.get(
        f"/api/v1/users/{uuid.uuid4()}", headers=contacts.headers(admin)
    )
    assert_problem(response, 404, "not-found")


async def test_without_a_user_identity_every_endpoint_is_401(contacts):
    _, admin = await contacts.new_venue()
    calls = [
        ("GET", "/api/v1/users/me", None),
        ("GET", "/api/v1/users", None),
        ("GET", f"/api/v1/users/{admin.user_id}", None),
        ("POST", "/api/v1/users", {"authSubject": "s", "email": "a@b.example", "role": "STAFF"}),
        ("PATCH", f"/api/v1/users/{admin.user_id}", {"name": "x"}),
    ]
    for headers in ({}, {IDENTITY_HEADER: "not.a.token"}, contacts.service_headers()):
        for method, path, body in calls:
            response = await contacts.client.request(method, path, json=body, headers=headers)
            assert_problem(response, 401, "unauthorized")
            assert response.headers["www-authenticate"] == "Bearer"


# --- listing --------------------------------------------------------------------------


async def test_paging_walks_every_user_once_even_while_users_are_added(contacts):
    _, admin = await contacts.new_venue()
    existing = {admin.user_id}
    for _ in range(10):
        user, _ = await contacts.add_user(admin)
        existing.add(user["id"])
    headers = contacts.headers(admin)

    seen: list[str] = []
    added_meanwhile: set[str] = set()
    cursor = None
    pages = 0
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        response = await contacts.client.get("/api/v1/users", params=params, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= 3
        seen.extend(item["id"] for item in page["items"])
        pages += 1
        if pages == 2:  # writes between pages neither repeat nor hide the others
            user, _ = await contacts.add_user(admin)
            added_meanwhile.add(user["id"])
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)), "an item was repeated"
    assert existing <= set(seen), "an item was skipped"
    assert set(seen) <= existing | added_meanwhile
    assert seen == sorted(seen)  # a stable order: by id


async def test_the_default_limit_is_50_and_the_last_page_has_no_cursor(contacts):
    _, admin = await contacts.new_venue()
    response = await contacts.client.get("/api/v1/users", headers=contacts.headers(admin))
    assert response.json() == {"items": [response.json()["items"][0]], "nextCursor": None}


async def test_the_list_filters_by_role_and_active(contacts):
    _, admin = await contacts.new_venue()
    sales, _ = await contacts.add_user(admin, Role.SALES)
    gone, _ = await contacts.add_user(admin, Role.SALES)
    staff, _ = await contacts.add_user(admin, Role.STAFF)
    headers = contacts.headers(admin)
    off = await contacts.client.patch(
        f"/api/v1/users/{gone['id']}", json={"active": False}, headers=headers
    )
    assert off.status_code == 200

    async def ids(query):
        response = await contacts.client.get(f"/api/v1/users?{query}", headers=headers)
        assert response.status_code == 200, response.text
        return {item["id"] for item in response.json()["items"]}

    assert await ids("role=SALES") == {sales["id"], gone["id"]}
    assert await ids("role=SALES&active=true") == {sales["id"]}
    assert await ids("active=false") == {gone["id"]}
    assert await ids("role=STAFF") == {staff["id"]}
    assert await ids("") == {admin.user_id, sales["id"], gone["id"], staff["id"]}


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=201",
        "limit=x",
        "role=OWNER",
        "active=maybe",
        "cursor=%%%",
        "cursor=WzEsMl0",
    ],
)
async def test_bad_list_parameters_are_422(contacts, query):
    _, admin = await contacts.new_venue()
    response = await contacts.client.get(f"/api/v1/users?{query}", headers=contacts.headers(admin))
    assert_problem(response, 422, "invalid-input")


async def test_limit_200_is_allowed(contacts):
    _, admin = await contacts.new_venue()
    response = await contacts.client.get("/api/v1/users?limit=200", headers=contacts.headers(admin))
    assert response.status_code == 200


# --- creating -------------------------------------------------------------------------


async def test_an_admin_creates_a_user(contacts):
    venue, admin = await contacts.new_venue()
    response = await contacts.client.post(
        "/api/v1/users",
        json={
            "authSubject": "google-oauth2|1234",
            "email": "  Pat.Lee@Venue.Example ",
            "name": " Pat  Lee ",
            "image": "https://img.example/pat.png",
            "emailVerified": "2026-03-01T09:30:00+01:00",
            "role": "PROJECT_MANAGER",
        },
        headers=contacts.headers(admin),
    )
    assert response.status_code == 201, response.text
    user = response.json()
    assert response.headers["location"] == f"/api/v1/users/{user['id']}"
    assert uuid.UUID(user["id"]).version == 4
    assert user | {"id": "", "createdAt": "", "updatedAt": ""} == {
        "id": "",
        "authSubject": "google-oauth2|1234",
        "email": "pat.lee@venue.example",
        "name": "Pat Lee",
        "image": "https://img.example/pat.png",
        "emailVerified": "2026-03-01T08:30:00Z",
        "role": "PROJECT_MANAGER",
        "venueId": venue,
        "active": True,
        "createdAt": "",
        "updatedAt": "",
    }
    assert user["createdAt"] == user["updatedAt"]
    again = await contacts.client.get(
        f"/api/v1/users/{user['id']}", headers=contacts.headers(admin)
    )
    assert again.json() == user  # what was answered is what was stored


@pytest.mark.parametrize("role", [Role.SALES, Role.PROJECT_MANAGER, Role.STAFF, Role.CLIENT])
async def test_only_an_admin_creates_users(contacts, role):
    _, admin = await contacts.new_venue()
    _, someone = await contacts.add_user(admin, role)
    response = await contacts.client.post(
        "/api/v1/users",
        json={"authSubject": unique_subject(), "email": "new@people.example", "role": "ADMIN"},
        headers=contacts.headers(someone),
    )
    assert_problem(response, 403, "forbidden")
    listed = await contacts.client.get("/api/v1/users?limit=200", headers=contacts.headers(admin))
    assert "new@people.example" not in {item["email"] for item in listed.json()["items"]}


def unique_subject() -> str:
    return f"sub-{uuid.uuid4().hex}"


async def test_a_duplicate_identity_or_email_in_the_venue_is_409_naming_the_user(contacts):
    _, admin = await contacts.new_venue()
    user, _ = await contacts.add_user(admin, email="dup@people.example")
    headers = contacts.headers(admin)

    same_subject = await contacts.client.post(
        "/api/v1/users",
        json={"authSubject": user["authSubject"], "email": "other@people.example", "role": "STAFF"},
        headers=headers,
    )
    assert assert_problem(same_subject, 409, "conflict")["existingId"] == user["id"]

    same_email = await contacts.client.post(
        "/api/v1/users",
        json={"authSubject": unique_subject(), "email": " DUP@People.Example", "role": "STAFF"},
        headers=headers,
    )
    assert assert_problem(same_email, 409)["existingId"] == user["id"]

    listed = await contacts.client.get("/api/v1/users?limit=200", headers=headers)
    assert len(listed.json()["items"]) == 2  # the admin and the one user: nothing added


async def test_the_same_email_in_another_venue_is_fine(contacts):
    _, admin_a = await contacts.new_venue()
    _, admin_b = await contacts.new_venue()
    await contacts.add_user(admin_a, email="shared@people.example")
    user_b, _ = await contacts.add_user(admin_b, email="shared@people.example")
    assert user_b["venueId"] == admin_b.venue_id


async def test_an_identity_of_another_venue_is_409_without_revealing_that_user(contacts):
    _, admin_a = await contacts.new_venue()
    _, admin_b = await contacts.new_venue()
    user_a, _ = await contacts.add_user(admin_a)
    response = await contacts.client.post(
        "/api/v1/users",
        json={"authSubject": user_a["authSubject"], "email": "x@people.example", "role": "STAFF"},
        headers=contacts.headers(admin_b),
    )
    body = assert_problem(response, 409, "conflict")
    assert "existingId" not in body
    assert user_a["id"] not in response.text


async def test_concurrent_creations_of_one_identity_make_one_user(contacts):
    _, admin = await contacts.new_venue()
    subject = unique_subject()
    responses = await asyncio.gather(
        *(
            contacts.client.post(
                "/api/v1/users",
                json={"authSubject": subject, "email": f"c{n}@people.example", "role": "STAFF"},
                headers=contacts.headers(admin),
            )
            for n in range(5)
        )
    )
    created = [r for r in responses if r.status_code == 201]
    conflicts = [r for r in responses if r.status_code == 409]
    assert len(created) == 1 and len(conflicts) == 4
    assert {r.json()["existingId"] for r in conflicts} == {created[0].json()["id"]}


# --- changing -------------------------------------------------------------------------


async def test_an_admin_changes_name_image_role_and_active(contacts):
    _, admin = await contacts.new_venue()
    user, _ = await contacts.add_user(admin, Role.STAFF, name="Old")
    response = await contacts.client.patch(
        f"/api/v1/users/{user['id']}",
        json={
            "name": "New",
            "image": "https://img.example/n.png",
            "role": "SALES",
            "active": False,
        },
        headers=contacts.headers(admin),
    )
    assert response.status_code == 200, response.text
    changed = response.json()
    assert (changed["name"], changed["image"], changed["role"], changed["active"]) == (
        "New",
        "https://img.example/n.png",
        "SALES",
        False,
    )
    assert changed["updatedAt"] > user["updatedAt"]
    assert changed["createdAt"] == user["createdAt"]
    cleared = await contacts.client.patch(
        f"/api/v1/users/{user['id']}",
        json={"name": None, "image": None},
        headers=contacts.headers(admin),
    )
    assert (cleared.json()["name"], cleared.json()["image"]) == (None, None)


@pytest.mark.parametrize("role", [Role.SALES, Role.PROJECT_MANAGER, Role.STAFF, Role.CLIENT])
async def test_a_user_changes_only_their_own_name_and_image(contacts, role):
    _, admin = await contacts.new_venue()
    me, principal = await contacts.add_user(admin, role)
    colleague, _ = await contacts.add_user(admin, Role.STAFF, name="Colleague")
    headers = contacts.headers(principal)
    path = f"/api/v1/users/{me['id']}"

    own = await contacts.client.patch(
        path, json={"name": "Me", "image": "https://img.example/me.png"}, headers=headers
    )
    assert own.status_code == 200, own.text
    assert (own.json()["name"], own.json()["image"]) == ("Me", "https://img.example/me.png")

    for body in ({"role": "ADMIN"}, {"active": False}, {"name": "Me too", "role": "ADMIN"}):
        assert_problem(await contacts.client.patch(path, json=body, headers=headers), 403)
    unchanged = await contacts.client.patch(path, json={"role": role}, headers=headers)
    assert unchanged.status_code == 200  # one's current role is not a change

    other = await contacts.client.patch(
        f"/api/v1/users/{colleague['id']}", json={"name": "x"}, headers=headers
    )
    assert_problem(other, 403, "forbidden")

    after = await contacts.client.get(path, headers=contacts.headers(admin))
    assert (after.json()["name"], after.json()["role"], after.json()["active"]) == (
        "Me",
        role,
        True,
    )
    colleague_after = await contacts.client.get(
        f"/api/v1/users/{colleague['id']}", headers=contacts.headers(admin)
    )
    assert colleague_after.json() == colleague


async def test_a_patch_without_changes_answers_the_user_as_it_is(contacts):
    _, admin = await contacts.new_venue()
    user, _ = await contacts.add_user(admin, name="Same")
    for body in ({}, {"name": " Same "}, {"role": "STAFF", "active": True}):
        response = await contacts.client.patch(
            f"/api/v1/users/{user['id']}", json=body, headers=contacts.headers(admin)
        )
        assert response.json() == user


async def test_the_last_active_admin_can_be_neither_demoted_nor_deactivated(contacts):
    _, first = await contacts.new_venue()
    path = f"/api/v1/users/{first.user_id}"
    headers = contacts.headers(first)
    for body in ({"role": "SALES"}, {"active": False}, {"role": "STAFF", "active": False}):
        body_409 = assert_problem(
            await contacts.client.patch(path, json=body, headers=headers), 409, "conflict"
        )
        assert "last active ADMIN" in body_409["detail"]

    # a second admin who is inactive does not count...
    second, second_principal = await contacts.add_user(first, Role.ADMIN)
    second_path = f"/api/v1/users/{second['id']}"
    off = await contacts.client.patch(second_path, json={"active": False}, headers=headers)
    assert off.status_code == 200
    assert_problem(await contacts.client.patch(path, json={"active": False}, headers=headers), 409)

    # ...an active one does: the first may now step down
    on = await contacts.client.patch(second_path, json={"active": True}, headers=headers)
    assert on.status_code == 200
    demoted = await contacts.client.patch(path, json={"role": "SALES"}, headers=headers)
    assert demoted.status_code == 200 and demoted.json()["role"] == "SALES"

    # and now the second is the last one
    as_second = contacts.headers(second_principal)
    assert_problem(
        await contacts.client.patch(second_path, json={"role": "STAFF"}, headers=as_second), 409
    )
    assert_problem(
        await contacts.client.patch(second_path, json={"active": False}, headers=as_second), 409
    )
    # name changes of the last admin are fine
    renamed = await contacts.client.patch(second_path, json={"name": "Boss"}, headers=as_second)
    assert renamed.status_code == 200


async def test_two_admins_demoting_each_other_at_once_leave_one_admin(contacts):
    for _ in range(3):
        _, first = await contacts.new_venue()
        _, second = await contacts.add_user(first, Role.ADMIN)
        responses = await asyncio.gather(
            contacts.client.patch(
                f"/api/v1/users/{second.user_id}",
                json={"role": "SALES"},
                headers=contacts.headers(first),
            ),
            contacts.client.patch(
                f"/api/v1/users/{first.user_id}",
                json={"active": False},
                headers=contacts.headers(second),
            ),
        )
        assert sorted(r.status_code for r in responses) == [200, 409], [r.text for r in responses]
        admins = await contacts.client.get(
            "/api/v1/users?role=ADMIN&active=true", headers=contacts.headers(first)
        )
        assert len(admins.json()["items"]) == 1


async def test_concurrent_changes_of_one_user_are_all_applied(contacts):
    _, admin = await contacts.new_venue()
    user, _ = await contacts.add_user(admin, Role.STAFF)
    path = f"/api/v1/users/{user['id']}"
    headers = contacts.headers(admin)
    await asyncio.gather(
        contacts.client.patch(path, json={"name": "Named"}, headers=headers),
        contacts.client.patch(path, json={"role": "SALES"}, headers=headers),
        contacts.client.patch(path, json={"image": "https://img.example/i.png"}, headers=headers),
    )
    after = (await contacts.client.get(path, headers=headers)).json()
    assert (after["name"], after["role"], after["image"]) == (
        "Named",
        "SALES",
        "https://img.example/i.png",
    )


# --- bad input ------------------------------------------------------------------------


async def test_unknown_fields_are_422_and_change_nothing(contacts):
    _, admin = await contacts.new_venue()
    user, _ = await contacts.add_user(admin, name="Kept")
    headers = contacts.headers(admin)
    path = f"/api/v1/users/{user['id']}"

    for body in (
        {"name": "Changed", "email": "new@people.example"},
        {"name": "Changed", "venueId": "elsewhere"},
        {"name": "Changed", "auth_subject": "x"},
        {"displayName": "Changed"},
    ):
        response = await contacts.client.patch(path, json=body, headers=headers)
        problem = assert_problem(response, 422, "invalid-input")
        assert problem["errors"][0]["type"] == "extra_forbidden"

    created = await contacts.client.post(
        "/api/v1/users",
        json={
            "authSubject": unique_subject(),
            "email": "sneaky@people.example",
            "role": "STAFF",
            "venueId": "elsewhere",
        },
        headers=headers,
    )
    assert_problem(created, 422)
    assert (await contacts.client.get(path, headers=headers)).json() == user
    listed = await contacts.client.get("/api/v1/users?limit=200", headers=headers)
    assert {item["id"] for item in listed.json()["items"]} == {admin.user_id, user["id"]}


@pytest.mark.parametrize(
    "body",
    [
        {"email": "not-an-email"},
        {"email": "a@b.example", "image": "ftp://img.example/a.png"},
        {"email": "a@b.example", "role": "OWNER"},
        {"email": "a@b.example", "emailVerified": "2026-01-01T10:00:00"},
        {"email": "a@b.example", "authSubject": " padded "},
        {"email": "a@b.example", "name": "n" * 201},
    ],
)
async def test_invalid_values_are_422_and_create_nothing(contacts, body):
    _, admin = await contacts.new_venue()
    response = await contacts.client.post(
        "/api/v1/users",
        json={"authSubject": unique_subject(), "role": "STAFF", **body},
        headers=contacts.headers(admin),
    )
    assert_problem(response, 422, "invalid-input")
    listed = await contacts.client.get("/api/v1/users", headers=contacts.headers(admin))
    assert [item["id"] for item in listed.json()["items"]] == [admin.user_id]


@pytest.mark.parametrize(
    "body",
    [
        {"role": None},
        {"active": None},
        {"active": "no"},
        {"image": "javascript:alert(1)"},
        {"name": ["x"]},
    ],
)
async def test_invalid_changes_are_422_and_change_nothing(contacts, body):
    _, admin = await contacts.new_venue()
    user, _ = await contacts.add_user(admin, name="Kept")
    path = f"/api/v1/users/{user['id']}"
    response = await contacts.client.patch(
        path, json={"name": "Changed", **body}, headers=contacts.headers(admin)
    )
    assert_problem(response, 422, "invalid-input")
    assert (await contacts.client.get(path, headers=contacts.headers(admin))).json() == user


async def test_a_body_that_is_not_json_is_422(contacts):
    _, admin = await contacts.new_venue()
    response = await contacts.client.post(
        "/api/v1/users",
        content=b"{not json",
        headers={**contacts.headers(admin), "content-type": "application/json"},
    )
    assert_problem(response, 422)
