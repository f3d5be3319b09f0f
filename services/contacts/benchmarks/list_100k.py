"""Benchmark (not a test): a page of ``GET /contacts`` at 100,000 contacts vs at 1,000.

Seeds a venue with --contacts contacts (default 100,000) and another with --small
(default 1,000), bulk-inserted as the repository stores them (``to_document`` of
``Contact.create``, with varied statuses, sources, heats and names), into a database of
its own with the service's indexes. Then, for every sort and filter the listing offers,
it times through ``ContactRepository.page`` (what the service's listing calls) the first
page and a deep page of 50, --rounds times each, in both venues. The deep page is the
one after --depth pages, or, if the small venue has fewer for that filter, after one
page less than it has (the same number in both venues: both read a full page at the
same depth). A filter that matches less than a page in the small venue reads all its
matches there, fewer than the big venue's full page: such figures say so in their note.
Each figure is the p50 at the big venue beside the same shape's p50 at the small one
(goal: at most 1.5x). On the local FerretDB this measures the pushdown patches (see
``gala.store``); on MongoDB, its planner.

    cd /work/main && make infra-up        # and export the GALA_... lines it prints
    .venv/bin/python services/contacts/benchmarks/list_100k.py [--contacts 100000 --small 1000]

Run small (e.g. ``--contacts 5000 --small 500 --rounds 3``) to check that it works.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import statistics
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from contacts.leads.domain import Contact
from contacts.leads.repository import (
    COLLECTION,
    INDEXES,
    SORTS,
    ContactFilter,
    ContactRepository,
    to_document,
)
from gala.benchmarking import Figure, report
from gala.contracts.contacts import ContactStatus, LeadSource
from gala.events.outbox import Outbox
from gala.store import Store

PAGE = 50
FIRST_NAMES = ["Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "Ken"]
STATUSES = [s for s in ContactStatus if s is not ContactStatus.LOST]
FILTERS: dict[str, ContactFilter] = {
    "none": ContactFilter(),
    "status": ContactFilter(status=ContactStatus.LEAD),
    "leadSource": ContactFilter(lead_source=LeadSource.WEBSITE),
    "heat": ContactFilter(heat_min=10, heat_max=80),
    "prefix": ContactFilter(prefix="ad"),
    "all": ContactFilter(ContactStatus.LEAD, LeadSource.WEBSITE, 0, 100, "a"),
}


async def seed(store: Store, venue: str, count: int) -> None:
    """``count`` contacts of ``venue``, stored as the repository stores them."""
    rng = random.Random(count)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    batch = []
    for n in range(count):
        created = start + timedelta(seconds=rng.randrange(40_000_000))
        contact = Contact.create(
            venue_id=venue,
            name=f"{rng.choice(FIRST_NAMES)} {n:06d}",
            email=f"guest{n}@{venue}.example",
            now=created,
            lead_source=rng.choice(list(LeadSource)),
            status=rng.choice(STATUSES),
            contact_id=str(uuid.uuid4()),
        )
        contact.lead_heat = rng.randrange(0, 101)
        contact.pending_events.clear()
        batch.append(to_document(contact))
        if len(batch) == 1000:
            await store[COLLECTION].insert_many(batch)
            batch = []
    if batch:
        await store[COLLECTION].insert_many(batch)


async def deep_cursor(
    repository: ContactRepository, venue: str, where: ContactFilter, sort: str, depth: int
) -> tuple[str | None, int]:
    """The cursor after ``depth`` full pages (or after as many as there are), and how many."""
    cursor: str | None = None
    pages = 0
    while pages < depth:
        _, following = await repository.page(venue, where, sort, PAGE, cursor)
        if following is None:
            break
        cursor, pages = following, pages + 1
    return cursor, pages


async def p50_ms(
    repository: ContactRepository,
    venue: str,
    where: ContactFilter,
    sort: str,
    cursor: str | None,
    rounds: int,
) -> float:
    await repository.page(venue, where, sort, PAGE, cursor)  # warm up
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        await repository.page(venue, where, sort, PAGE, cursor)
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


async def measure(
    repository: ContactRepository,
    venues: Sequence[tuple[str, int]],
    depth: int,
    rounds: int,
) -> list[Figure]:
    (big, big_count), (small, small_count) = venues
    figures = []
    for (name, where), sort in itertools.product(FILTERS.items(), SORTS):
        _, available = await deep_cursor(repository, small, where, sort, depth + 1)
        pages = min(depth, max(available - 1, 0))
        matches = await repository.collection.count_documents(where.query(small))
        short = f", {matches} matches at {small_count:,}" if matches < PAGE * (pages + 1) else ""
        for page in ("first", "deep"):
            timed = []
            for venue in (big, small):
                cursor = None
                if page == "deep":
                    cursor, _ = await deep_cursor(repository, venue, where, sort, pages)
                timed.append(await p50_ms(repository, venue, where, sort, cursor, rounds))
            figures.append(
                Figure(
                    f"{page} page, filter {name}, sort {sort}",
                    timed[0],
                    "ms",
                    baseline=timed[1],
                    baseline_name=f"the same at {small_count:,} contacts",
                    higher_is_better=False,
                    goal_ratio=1.5,
                    note=f"p50 at {big_count:,} contacts"
                    + (f", cursor after {pages} pages" if page == "deep" else "")
                    + short,
                )
            )
    return figures


async def main(contacts: int, small: int, depth: int, rounds: int) -> None:
    url = os.environ.get("GALA_MONGO_URL", "mongodb://127.0.0.1:27017")
    database = f"gala_contacts_list_bench_{uuid.uuid4().hex[:8]}"
    store = Store(url, database)
    venues = [("bench-big-venue", contacts), ("bench-small-venue", small)]
    try:
        await store.ensure_indexes(INDEXES)
        started = time.perf_counter()
        for venue, count in venues:
            await seed(store, venue, count)
        print(f"seeded {contacts:,} + {small:,} contacts in {time.perf_counter() - started:.1f} s")
        repository = ContactRepository(store, Outbox("contacts"))
        figures = await measure(repository, venues, depth, rounds)
    finally:
        await store.client.drop_database(database)
        await store.close()
    report(
        "contacts listing: a page at 100k vs 1k contacts",
        figures,
        scale=f"{contacts:,} vs {small:,} contacts, pages of {PAGE}, {rounds} rounds",
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000, help="the big venue's size")
    parser.add_argument("--small", type=int, default=1_000, help="the baseline venue's size")
    parser.add_argument("--depth", type=int, default=10, help="pages before the deep page")
    parser.add_argument("--rounds", type=int, default=20, help="timed calls per shape")
    args = parser.parse_args()
    asyncio.run(main(args.contacts, args.small, args.depth, args.rounds))
