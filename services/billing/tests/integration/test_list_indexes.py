"""Every payments and documents listing reads one page through an index, first and deep
pages, for each filter it offers: the store's own plan (``explain``) of exactly the find
``find_page`` sends has an index and no in-memory sort (on the local FerretDB: the
filter, the sort and the limit pushed down into SQLite, see ``gala.store``)."""

from datetime import timedelta
from typing import Any

import pytest

from billing.documents.repository import SORT as DOCUMENTS_SORT
from billing.documents.repository import DocumentFilter
from billing.payments.repository import SORT as PAYMENTS_SORT
from billing.payments.repository import PaymentFilter
from gala.contracts.billing import PaymentStatus
from gala.store import PageRequest, encode_cursor, explain_page, page_plan_problems, utc_now

pytestmark = pytest.mark.asyncio(loop_scope="session")

NOW = utc_now()
PAYMENTS = {
    "none": PaymentFilter(),
    "opportunity": PaymentFilter(opportunity_id="o1"),
    "project": PaymentFilter(project_id="p1"),
    "status": PaymentFilter(status=PaymentStatus.PENDING),
    "attention": PaymentFilter(needs_attention=True),
    "no attention": PaymentFilter(needs_attention=False),
    "a client's": PaymentFilter(opportunity_ids=["o1", "o2"]),
    "due from": PaymentFilter(due_from=NOW),
    "due window": PaymentFilter(due_from=NOW, due_before=NOW + timedelta(days=30)),
    "all": PaymentFilter(
        opportunity_id="o1",
        status=PaymentStatus.OVERDUE,
        opportunity_ids=["o1"],
        due_before=NOW,
    ),
}
DOCUMENTS = {
    "none": DocumentFilter(),
    "opportunity": DocumentFilter(opportunity_id="o1"),
    "project": DocumentFilter(project_id="p1"),
    "contact": DocumentFilter(contact_id="c1"),
    "a client's": DocumentFilter(opportunity_ids=["o1", "o2"], project_ids=["p1"]),
}


def _cursor(request: PageRequest) -> str:
    """A cursor after an item with these sort values (a deep page)."""
    keys = request.keys()
    values: list[Any] = [NOW if key != "_id" else "m" for key, _ in keys]
    return encode_cursor(values)


async def _assert_pages_read_one_page(
    collection: Any, query: dict[str, Any], sort: Any, *, search: bool = False
) -> None:
    first = PageRequest(sort=sort, limit=50)
    deep = PageRequest(sort=sort, limit=50, cursor=_cursor(first))
    for request in (first, deep):
        explain = await explain_page(collection, query, request)
        assert not page_plan_problems(explain, search=search), (query, request.cursor, explain)


@pytest.fixture(scope="module")
async def venue(billing):
    """A venue with a schedule, so that the collections hold what billing stores."""
    venue, _ = billing.new_venue()
    await billing.win(venue)
    return venue


@pytest.mark.parametrize("name", PAYMENTS)
async def test_each_payments_listing_reads_one_page_through_an_index(billing, venue, name):
    query = PAYMENTS[name].query(venue)
    await _assert_pages_read_one_page(billing.runtime.store["payments"], query, PAYMENTS_SORT)


@pytest.mark.parametrize("name", DOCUMENTS)
async def test_each_documents_listing_reads_one_page_through_an_index(billing, venue, name):
    query = DOCUMENTS[name].query(venue)
    # a client's: their opportunities' or their projects' documents, an $or of two fields
    # (a search: each branch read through its index, the few matches then sorted)
    await _assert_pages_read_one_page(
        billing.runtime.store["documents"], query, DOCUMENTS_SORT, search=name == "a client's"
    )
