"""The board and the opportunity listings read through indexes: the store's own plans
(``explain``). On MongoDB the planner picks the declared indexes; on the local FerretDB
its index-pushdown patch reads the index of the equality filters."""

import pytest

from gala.store import PageRequest, uses_index
from pipeline.board.repository import BoardRepository
from pipeline.opportunities.repository import SORT, OpportunityFilter, OpportunityRepository
from pipeline.stages.domain import DEFAULT_STAGES

pytestmark = pytest.mark.asyncio(loop_scope="session")

FILTERS = {
    "none": OpportunityFilter(),
    "stage": OpportunityFilter(stage_id="qualified"),
    "contact": OpportunityFilter(contact_id="c-1"),
    "eventType": OpportunityFilter(event_type="WEDDING"),
    "room": OpportunityFilter(room_assignment="r-1"),
}


async def test_the_board_reads_through_an_index(pipeline):
    venue, admin = pipeline.new_venue()
    contact = await pipeline.known_contact(venue)
    for n in range(3):
        body = {"name": f"Wedding {n}", "contactId": contact, "value": "100.00"}
        created = await pipeline.call("POST", "/api/v1/opportunities", admin, body)
        assert created.status_code == 201, created.text
    plans = await BoardRepository(pipeline.runtime.store).plans(venue, DEFAULT_STAGES[0].id, 10)
    assert all(uses_index(plan) for plan in plans), plans


@pytest.mark.parametrize("name", FILTERS)
async def test_each_opportunity_listing_reads_through_an_index(pipeline, name):
    venue, _ = pipeline.new_venue()
    repository = OpportunityRepository(pipeline.runtime.store, pipeline.runtime.outbox)
    query = FILTERS[name].query(venue)
    assert uses_index(await repository.explain_page(query, PageRequest(sort=SORT, limit=50)))
