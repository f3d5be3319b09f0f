"""The opportunities and rooms listings read one page through an index, first and deep
pages, for each filter they offer: the store's own plan (``explain``) of exactly the find
``find_page`` sends has an index and no in-memory sort (on the local FerretDB: filter,
sort and limit pushed down; test_pipeline_query_plans.py checks the board's reads)."""

from datetime import timedelta
from typing import Any

import pytest

from gala.contracts.pipeline import OpportunityOutcome
from gala.identity import venue_scoped
from gala.store import PageRequest, encode_cursor, explain_page, page_plan_problems, utc_now
from pipeline.opportunities.repository import SORT, OpportunityFilter

pytestmark = pytest.mark.asyncio(loop_scope="session")

NOW = utc_now()
OPPORTUNITIES = {
    "none": OpportunityFilter(),
    "stage": OpportunityFilter(stage_id="s1"),
    "contact": OpportunityFilter(contact_id="c1"),
    "event type": OpportunityFilter(event_type="WEDDING"),
    "room": OpportunityFilter(room_assignment="r1"),
    "outcome": OpportunityFilter(outcome=OpportunityOutcome.OPEN),
    "event dates": OpportunityFilter(event_from=NOW, event_to=NOW + timedelta(days=90)),
    "all": OpportunityFilter(
        stage_id="s1", contact_id="c1", outcome=OpportunityOutcome.OPEN, event_from=NOW
    ),
}


async def _assert_pages_read_one_page(
    collection: Any, query: dict[str, Any], first: PageRequest, cursor_values: list[Any]
) -> None:
    deep = PageRequest(first.sort, first.limit, encode_cursor(cursor_values))
    for request in (first, deep):
        explain = await explain_page(collection, query, request)
        assert not page_plan_problems(explain), (query, request.cursor, explain)


@pytest.mark.parametrize("name", OPPORTUNITIES)
async def test_each_opportunities_listing_reads_one_page_through_an_index(pipeline, name):
    venue = "venue-plans"
    await pipeline.known_contact(venue)
    query = OPPORTUNITIES[name].query(venue)
    collection = pipeline.runtime.store["opportunities"]
    await _assert_pages_read_one_page(collection, query, PageRequest(SORT, 50), [NOW, "m"])


async def test_the_rooms_listing_reads_one_page_through_an_index(pipeline):
    query = venue_scoped("venue-plans")
    first = PageRequest([("nameKey", 1)], 50)
    collection = pipeline.runtime.store["rooms"]
    await _assert_pages_read_one_page(collection, query, first, ["garden", "m"])
