"""The partner apps, webhook endpoints and delivery log listings read one page through an
index, first and deep pages, for each filter they offer: the store's own plan
(``explain``) of exactly the find ``find_page`` sends has an index and no in-memory sort
(on the local FerretDB: filter, sort and limit pushed down)."""

from typing import Any

import pytest

from gala.identity import venue_scoped
from gala.store import PageRequest, encode_cursor, explain_page, page_plan_problems, utc_now
from partners.deliveries.domain import DeliveryStatus
from partners.deliveries.repository import LOG_SORT, _log_query

pytestmark = pytest.mark.asyncio(loop_scope="session")

LOGS: dict[str, tuple[DeliveryStatus | None, str | None]] = {
    "none": (None, None),
    "status": (DeliveryStatus.FAILED, None),
    "type": (None, "gala.contact.created.v1"),
    "both": (DeliveryStatus.SUCCEEDED, "gala.contact.created.v1"),
}


async def _assert_pages_read_one_page(
    collection: Any, query: dict[str, Any], first: PageRequest, cursor_values: list[Any]
) -> None:
    deep = PageRequest(first.sort, first.limit, encode_cursor(cursor_values))
    for request in (first, deep):
        explain = await explain_page(collection, query, request)
        assert not page_plan_problems(explain), (query, request.cursor, explain)


@pytest.mark.parametrize("name", LOGS)
async def test_each_delivery_log_listing_reads_one_page_through_an_index(partners, name):
    query = _log_query("venue-plans", "e1", *LOGS[name])
    deliveries = partners.runtime.store["webhook_deliveries"]
    first = PageRequest(LOG_SORT, 50)
    await _assert_pages_read_one_page(deliveries, query, first, [utc_now(), "m"])


@pytest.mark.parametrize("collection", ["partner_apps", "webhook_endpoints"])
async def test_the_apps_and_endpoints_listings_read_one_page_through_an_index(partners, collection):
    query = venue_scoped("venue-plans")
    first = PageRequest([("_id", 1)], 50)
    await _assert_pages_read_one_page(partners.runtime.store[collection], query, first, ["m"])
