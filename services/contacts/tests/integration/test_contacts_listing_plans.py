"""Every contact listing the API offers reads through an index: the store's own plan
(``explain``) for the first page and for a page after a cursor, for each filter and
sort. On MongoDB the planner picks one of the declared listing indexes; on the local
FerretDB its index-pushdown patch reads the venue's (and equality filters') index. A
search (a name or e-mail prefix) reads its matches through the name and e-mail indexes
and sorts them: no walk in the sort's order can skip the rows that only match by e-mail."""

import itertools

import pytest

from contacts.leads.repository import SORTS, ContactFilter, ContactRepository
from gala.contracts.contacts import ContactStatus, LeadSource
from gala.store import page_plan_problems, uses_index

pytestmark = pytest.mark.asyncio(loop_scope="session")

FILTERS = {
    "none": ContactFilter(),
    "status": ContactFilter(status=ContactStatus.LEAD),
    "leadSource": ContactFilter(lead_source=LeadSource.WEBSITE),
    "heat": ContactFilter(heat_min=10, heat_max=80),
    "prefix": ContactFilter(prefix="ad"),
    "all": ContactFilter(ContactStatus.LEAD, LeadSource.WEBSITE, 0, 100, "a"),
}


@pytest.fixture(scope="module")
async def listed(contacts):
    """A venue with enough contacts for every listing to have a second page."""
    venue, admin = await contacts.new_venue()
    for n in range(12):
        body = {
            "name": f"Ada {n:02d}",
            "email": f"ada{n:02d}@wed.example",
            "leadSource": "WEBSITE",
            "status": "LEAD",
        }
        response = await contacts.client.post(
            "/api/v1/contacts", json=body, headers=contacts.headers(admin)
        )
        assert response.status_code == 201, response.text
    return venue, ContactRepository(contacts.runtime.store, contacts.runtime.outbox)


@pytest.mark.parametrize(("filter_name", "sort"), list(itertools.product(FILTERS, SORTS)))
async def test_each_listing_page_reads_through_an_index(listed, filter_name, sort):
    venue, repository = listed
    where = FILTERS[filter_name]
    items, cursor = await repository.page(venue, where, sort, limit=2, cursor=None)
    search = where.prefix is not None  # a name or an e-mail address: its matches are read
    explain = await repository.explain(venue, where, sort, 2, None)
    assert uses_index(explain)
    assert not page_plan_problems(explain, search=search), explain
    if cursor is not None:
        explain = await repository.explain(venue, where, sort, 2, cursor)
        assert uses_index(explain)
        assert not page_plan_problems(explain, search=search), explain
    if filter_name != "heat":  # (the heat of these contacts is whatever the rules say)
        assert items
