"""A conversation's history reads one page through an index, first and deep pages: the
store's own plan (``explain``) of exactly the find ``find_page`` sends has an index and
no in-memory sort (on the local FerretDB: filter, sort and limit pushed down)."""

import pytest

from chat.messages.repository import NEWEST_FIRST
from gala.identity import venue_scoped
from gala.store import PageRequest, encode_cursor, explain_page, page_plan_problems

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_the_history_reads_one_page_through_an_index(chat):
    venue = "venue-plans"
    project_id = await chat.project(venue, [chat.client_of(venue)])
    query = venue_scoped(venue, {"projectId": project_id})
    first = PageRequest(NEWEST_FIRST, 50)
    deep = PageRequest(NEWEST_FIRST, 50, encode_cursor([500, "m"]))
    for request in (first, deep):
        explain = await explain_page(chat.runtime.store["messages"], query, request)
        assert not page_plan_problems(explain), (request.cursor, explain)
