"""The projects listing reads through an index in its order, first and deep pages, for
each filter it offers: the store's own plan (``explain``) of exactly the find
``find_page`` sends has an index and no in-memory sort. On the local FerretDB the filter,
sort and limit are pushed down into SQLite; a CLIENT's (``clientIds``, an array) and a
STAFF user's (``tasks.assigneeId``, a path into the tasks) filters are checked by
FerretDB itself on the rows SQLite streams in the index's order, up to the page's limit
(``exact_filter=False``). The tasks listing is an aggregation over the projects' embedded
tasks (see tasks/repository.py): its ``$match`` reads through an index."""

from datetime import timedelta

import pytest

from gala.contracts.projects import ProjectStatus
from gala.store import (
    PageRequest,
    encode_cursor,
    explain_page,
    page_plan_problems,
    uses_index,
    utc_now,
)
from projects.projects.repository import SORT, ProjectFilter
from projects.tasks.repository import TaskFilter

pytestmark = pytest.mark.asyncio(loop_scope="session")

NOW = utc_now()
PROJECTS: dict[str, tuple[ProjectFilter, bool]] = {
    "none": (ProjectFilter(), True),
    "status": (ProjectFilter(status=ProjectStatus.ACTIVE), True),
    "opportunity": (ProjectFilter(opportunity_id="o1"), True),
    "starts": (ProjectFilter(starts_from=NOW, starts_before=NOW + timedelta(days=9)), True),
    "a client's": (ProjectFilter(client_id="u1"), False),
    "a staff member's": (ProjectFilter(assignee_id="u2"), False),
}


@pytest.fixture(scope="module")
async def venue(projects):
    """A venue with a project, so that the collection holds what projects stores."""
    venue = "venue-plans"
    await projects.win(venue)
    return venue


@pytest.mark.parametrize("name", PROJECTS)
async def test_each_projects_listing_reads_one_page_through_an_index(projects, venue, name):
    where, exact = PROJECTS[name]
    query = where.query(venue)
    first = PageRequest(SORT, 50)
    deep = PageRequest(SORT, 50, encode_cursor([NOW, "m"]))
    for request in (first, deep):
        explain = await explain_page(projects.runtime.store["projects"], query, request)
        problems = page_plan_problems(explain, exact_filter=exact)
        assert not problems, (query, request.cursor, problems, explain)


async def test_the_tasks_listing_matches_its_projects_through_an_index(projects, venue):
    stages = TaskFilter(due=None).pipeline(venue, NOW)
    explain = await projects.runtime.store.db.command(
        "explain", {"aggregate": "projects", "pipeline": stages, "cursor": {}}
    )
    assert uses_index(explain), explain
