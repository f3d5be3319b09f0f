"""The users and timeline listings read one page through an index, first and deep pages,
for each filter they offer (the contacts listing: test_contacts_listing_plans.py): the
store's own plan (``explain``) of exactly the find ``find_page`` sends has an index and
no in-memory sort (on the local FerretDB: filter, sort and limit pushed down)."""

from typing import Any

import pytest

from gala.identity import Role, venue_scoped
from gala.store import PageRequest, encode_cursor, explain_page, page_plan_problems, utc_now

pytestmark = pytest.mark.asyncio(loop_scope="session")

USERS: dict[str, dict[str, Any]] = {
    "none": {},
    "role": {"role": Role.PROJECT_MANAGER.value},
    "active": {"active": True},
    "both": {"role": Role.ADMIN.value, "active": False},
}
TIMELINE_SORT = [("at", -1), ("_id", -1)]


async def _assert_pages_read_one_page(
    collection: Any, query: dict[str, Any], first: PageRequest, cursor_values: list[Any]
) -> None:
    deep = PageRequest(first.sort, first.limit, encode_cursor(cursor_values))
    for request in (first, deep):
        explain = await explain_page(collection, query, request)
        assert not page_plan_problems(explain), (query, request.cursor, explain)


@pytest.mark.parametrize("name", USERS)
async def test_each_users_listing_reads_one_page_through_an_index(contacts, name):
    venue, _ = await contacts.new_venue()
    query = venue_scoped(venue, USERS[name])
    users = contacts.runtime.store["users"]
    await _assert_pages_read_one_page(users, query, PageRequest(limit=50), ["m"])


async def test_a_contacts_timeline_reads_one_page_through_an_index(contacts):
    venue, _ = await contacts.new_venue()
    query = venue_scoped(venue, {"contactId": "c1"})
    timeline = contacts.runtime.store["timeline"]
    first = PageRequest(TIMELINE_SORT, 50)
    await _assert_pages_read_one_page(timeline, query, first, [utc_now(), "m"])
