"""Every contact listing the API offers has an index that serves its filter and order.

The store's own plans are checked by the integration tests (test_contacts_listing_plans);
this checks that the declared indexes serve each listing whole on MongoDB, order
included: for each equality filter and sort the listing offers, an index whose keys are
the venue, the erased flag, the filter fields, then the sort field, then the id (the
cursor's tie-breaker), so no page needs an in-memory sort.
"""

import itertools

import pytest

from contacts.leads.repository import INDEXES, SORTS, ContactFilter
from gala.contracts.contacts import ContactStatus, LeadSource

FILTERS = {
    "none": ContactFilter(),
    "status": ContactFilter(status=ContactStatus.LEAD),
    "leadSource": ContactFilter(lead_source=LeadSource.WEBSITE),
}


@pytest.mark.parametrize(("filter_name", "sort"), list(itertools.product(FILTERS, SORTS)))
def test_an_index_serves_each_filter_and_sort(filter_name, sort):
    query = FILTERS[filter_name].query("venue-1")
    equality = [key for key, value in query.items() if not isinstance(value, dict)]
    ((sort_field, _),) = SORTS[sort]
    wanted = [*equality, sort_field, "_id"]
    keys = [[key for key, _ in index.keys] for index in INDEXES]
    assert any(
        key[: len(wanted)]
        and sorted(key[: len(equality)]) == sorted(equality)
        and key[len(equality) :] == [sort_field, "_id"]
        for key in keys
    ), f"no index for {wanted}"


def test_the_email_is_unique_per_venue():
    unique = [[k for k, _ in index.keys] for index in INDEXES if index.unique]
    assert ["venueId", "emailKey"] in unique
