"""The venue event log on the real broker and store: appended once per event, venues
never mixed, a walk that neither skips nor repeats while events arrive on several
partitions and two worker replicas, gaps of a dead writer, retention, erasure, filters."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gala.app import ProcessRole
from gala.contracts.contacts import ContactErased, ContactStatus, ContactUpdated, LeadSource
from gala.contracts.pipeline import OpportunityCreated, OpportunityWon
from gala.events.model import Event
from gala.identity import Principal, Role
from gala.settings import Settings
from gala.store import uses_index
from gala.testing import (
    ServiceUnderTest,
    envelope_of_event,
    eventually,
    running_service,
    unique_name,
)
from partners.bootstrap import service
from partners.events.domain import BUCKET_SIZE, EventQuery, TypeFilter
from partners.events.repository import EventLogRepository
from partners.events.service import EventLog
from services.partners.tests.integration.conftest import Partners, running

pytestmark = pytest.mark.asyncio(loop_scope="session")

EVENTS = "/api/v1/partners/events"


def opportunity(venue: str, kind: type[Event] = OpportunityCreated, **fields: Any) -> Event:
    values: dict[str, Any] = {
        "opportunity_id": fields.pop("opportunity_id", unique_name("opp-")),
        "venue_id": venue,
        "contact_id": fields.pop("contact_id", unique_name("contact-")),
        "name": "Summer wedding",
        "stage": "new inquiry",
        **fields,
    }
    return kind.model_validate(values)


def contact_updated(venue: str, contact_id: str) -> ContactUpdated:
    return ContactUpdated(
        contact_id=contact_id,
        venue_id=venue,
        name="Ana Pérez",
        email="ana@wed.example",
        lead_source=LeadSource.WEBSITE,
        status=ContactStatus.LEAD,
        lead_heat=10,
    )


async def publish(service: ServiceUnderTest, event: Event, event_id: str | None = None) -> str:
    subject = getattr(event, "opportunity_id", None) or event.contact_id  # type: ignore[attr-defined]
    return await service.publish(event, subject, event_id)


async def walk(
    service: ServiceUnderTest,
    reader: Principal,
    cursor: str | None = None,
    **params: Any,
) -> tuple[list[dict[str, Any]], str | None]:
    """Every event the log has for ``reader`` from ``cursor`` on, page by page."""
    items: list[dict[str, Any]] = []
    while True:
        query = {**params, **({"after": cursor} if cursor else {})}
        response = await service.call("GET", EVENTS, reader, **query)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        cursor = page["nextCursor"]
        if not page["hasMore"]:
            return items, cursor


async def log_of(service: ServiceUnderTest, reader: Principal, count: int, **params: Any) -> list:
    async def enough() -> list[dict[str, Any]] | None:
        items, _ = await walk(service, reader, **params)
        return items if len(items) >= count else None

    found: list[dict[str, Any]] = await eventually(enough, timeout=60)
    return found


def partner_of(venue: str) -> Principal:
    return Principal(user_id=f"partner-app:{uuid.uuid4()}", venue_id=venue, role=Role.PARTNER)


async def test_a_partner_reads_its_venues_events_as_cloudevents_and_never_anothers(
    partners: Partners,
) -> None:
    venue_a, venue_b = unique_name("venue-"), unique_name("venue-")
    won = opportunity(venue_a, OpportunityWon, outcome="WON", won_at=datetime.now(UTC))
    won_id = await publish(partners, won)
    await publish(partners, opportunity(venue_b))

    (event,) = await log_of(partners, partner_of(venue_a), 1)
    assert event["specversion"] == "1.0"
    assert event["id"] == won_id
    assert event["type"] == "gala.opportunity.won.v1"
    assert event["source"] == "/gala/test"
    assert event["subject"] == won.opportunity_id  # type: ignore[attr-defined]
    assert event["datacontenttype"] == "application/json"
    assert event["venueid"] == venue_a
    assert event["data"]["venueId"] == venue_a
    assert event["data"]["outcome"] == "WON"
    assert datetime.fromisoformat(event["time"]).tzinfo is not None

    (other,) = await log_of(partners, partner_of(venue_b), 1)
    assert other["venueid"] == venue_b
    await asyncio.sleep(1)
    assert [e["id"] for e in (await walk(partners, partner_of(venue_a)))[0]] == [won_id]


async def test_the_venues_admin_may_read_it_and_no_one_else(partners: Partners) -> None:
    venue = unique_name("venue-")
    for role in (Role.ADMIN, Role.PARTNER):
        response = await partners.call("GET", EVENTS, partners.member(venue, role))
        assert response.status_code == 200, response.text
    for role in (Role.SALES, Role.PROJECT_MANAGER, Role.STAFF, Role.CLIENT):
        response = await partners.call("GET", EVENTS, partners.member(venue, role))
        assert response.status_code == 403, response.text
        assert response.headers["content-type"] == "application/problem+json"


async def test_a_redelivered_event_is_logged_once(partners: Partners) -> None:
    venue = unique_name("venue-")
    event = opportunity(venue)
    event_id = await publish(partners, event)
    for _ in range(3):
        await publish(partners, event, event_id)
    marker = await publish(partners, opportunity(venue, opportunity_id=event.opportunity_id))  # type: ignore[attr-defined]

    items = await log_of(partners, partner_of(venue), 2)
    assert [item["id"] for item in items] == [event_id, marker]


async def test_a_walk_while_events_arrive_on_partitions_and_replicas_skips_nothing_nor_repeats(
    infra: Settings,
) -> None:
    """Two worker replicas share the partitions; one aggregate per event spreads them
    over every partition. A partner walks the log, cursor by cursor, while they arrive."""
    async with running(infra) as first:
        second_settings = first.runtime.settings.model_copy()
        async with running_service(service, second_settings, ProcessRole.WORKER, Partners):
            await asyncio.sleep(3)  # let the group settle with both members
            venue = unique_name("venue-")
            reader = partner_of(venue)
            published: list[str] = []

            async def produce() -> None:
                for batch in range(8):
                    ids = await asyncio.gather(
                        *(publish(first, opportunity(venue)) for _ in range(15))
                    )
                    published.extend(ids)
                    await asyncio.sleep(0.05 * batch)

            seen: list[str] = []
            cursor: str | None = None
            producer = asyncio.create_task(produce())
            deadline = asyncio.get_running_loop().time() + 90
            while (not producer.done() or len(set(seen)) < len(published)) and (
                asyncio.get_running_loop().time() < deadline
            ):
                items, cursor = await walk(first, reader, cursor, limit=7)
                seen += [item["id"] for item in items]
                await asyncio.sleep(0.05)
            await producer

    assert len(published) == 120
    assert len(seen) == len(set(seen)), "an event was given twice"
    assert set(seen) == set(published), f"{len(set(published) - set(seen))} events missing"


async def test_a_reader_waits_for_a_taken_position_then_gives_a_dead_writers_up(
    partners: Partners,
) -> None:
    """Position 1 is taken by a writer that never writes (it died); 2 is written. The
    reader stops before 1 within the grace period, and once 2 is older than that, it
    fills 1 and goes on. A writer that comes back with 1 is refused and appends anew."""
    venue = unique_name("venue-")
    reader = partner_of(venue)
    now = [datetime.now(UTC)]
    grace = timedelta(seconds=30)
    log = EventLog(EventLogRepository(partners.runtime.store), grace=grace, clock=lambda: now[0])
    repository = EventLogRepository(partners.runtime.store)

    dead = await repository.take_position(venue)
    assert dead == 1
    first = envelope_of_event(opportunity(venue), "opp-second")
    assert await log.append(first, opportunity(venue)) == 2

    items, _ = await walk(partners, reader)
    assert items == []  # 1 may still come: nothing is given past it

    now[0] += grace + timedelta(seconds=1)
    page = await log.page(reader, EventQuery(after=None, types=TypeFilter(), since=None, limit=10))
    assert [item.id for item in page.items] == [first.id]
    assert page.last == 2

    # the writer of position 1 comes back late: its insert loses, it takes position 3
    late = envelope_of_event(opportunity(venue), "opp-late")
    document = log._document(venue, dead, late, None, None)
    assert not await repository.insert_entry(document)
    assert await log.append(late, opportunity(venue)) == 3
    later = await log.page(reader, EventQuery(after=2, types=TypeFilter(), since=None, limit=10))
    assert [item.id for item in later.items] == [late.id]


async def test_a_page_reads_one_bucket_through_an_index(partners: Partners) -> None:
    venue = unique_name("venue-")
    repository = EventLogRepository(partners.runtime.store)
    log = EventLog(repository, grace=timedelta(seconds=30))
    event = opportunity(venue)
    await log.append(envelope_of_event(event, "opp"), event)
    assert uses_index(await repository.explain_bucket(venue, 0))


async def test_types_and_since_filter_the_walk(partners: Partners) -> None:
    venue = unique_name("venue-")
    reader = partner_of(venue)
    deal = unique_name("opp-")  # one aggregate: its events keep their order
    created = await publish(partners, opportunity(venue, opportunity_id=deal))
    won = await publish(
        partners,
        opportunity(
            venue, OpportunityWon, opportunity_id=deal, outcome="WON", won_at=datetime.now(UTC)
        ),
    )
    contact = await publish(partners, contact_updated(venue, unique_name("contact-")))
    await log_of(partners, reader, 3)

    exact, _ = await walk(partners, reader, types="gala.opportunity.won.v1")
    assert [e["id"] for e in exact] == [won]
    wildcard, _ = await walk(partners, reader, types=["gala.opportunity.*"])
    assert [e["id"] for e in wildcard] == [created, won]
    both, _ = await walk(partners, reader, types="gala.opportunity.won.v1,gala.contact.*")
    assert {e["id"] for e in both} == {won, contact}  # two topics: either order

    assert (await walk(partners, reader, since="2000-01-01T00:00:00Z"))[0] != []
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert (await walk(partners, reader, since=future))[0] == []

    for bad in ({"types": "gala.nothing.such.v1"}, {"types": "gala.nothing.*"}, {"since": "x"}):
        response = await partners.call("GET", EVENTS, reader, **bad)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"


async def test_a_tampered_or_another_venues_cursor_is_422(partners: Partners) -> None:
    venue = unique_name("venue-")
    reader = partner_of(venue)
    await publish(partners, opportunity(venue))
    await log_of(partners, reader, 1)
    _, cursor = await walk(partners, reader)
    assert cursor is not None
    body, _, mac = cursor.partition(".")
    tampered = [
        f"{body}x.{mac}",
        f"{body}.{mac[:-1]}{'A' if mac[-1] != 'A' else 'B'}",
        "garbage",
        "",
    ]
    for bad in tampered[:3]:
        response = await partners.call("GET", EVENTS, reader, after=bad)
        assert response.status_code == 422, (bad, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    response = await partners.call("GET", EVENTS, partner_of(unique_name("venue-")), after=cursor)
    assert response.status_code == 422, response.text


async def test_the_sweep_expires_whole_buckets_older_than_the_retention(
    partners: Partners,
) -> None:
    venue = unique_name("venue-")
    reader = partner_of(venue)
    now = [datetime.now(UTC)]
    repository = EventLogRepository(partners.runtime.store)
    log = EventLog(repository, grace=timedelta(seconds=30), clock=lambda: now[0])
    old_ids = []
    for _ in range(BUCKET_SIZE + 5):  # positions 1..105: bucket 0 (1-99) is full
        event = opportunity(venue)
        envelope = envelope_of_event(event, event.opportunity_id)  # type: ignore[attr-defined]
        await log.append(envelope, event)
        old_ids.append(envelope.id)
    now[0] += timedelta(days=31)
    fresh = opportunity(venue)
    fresh_envelope = envelope_of_event(fresh, fresh.opportunity_id)  # type: ignore[attr-defined]
    await log.append(fresh_envelope, fresh)

    assert await log.sweep(timedelta(days=30)) >= 1  # (other tests' venues are older too)
    assert await repository.bucket(venue, 0) == {}  # expired whole
    assert len(await repository.bucket(venue, 1)) == 7  # holds a fresh one: kept whole
    assert await repository.venue(venue) == (BUCKET_SIZE + 6, BUCKET_SIZE)
    await log.sweep(timedelta(days=30))  # idempotent
    assert len(await repository.bucket(venue, 1)) == 7
    items, _ = await walk(partners, reader)
    assert [e["id"] for e in items] == [*old_ids[BUCKET_SIZE - 1 :], fresh_envelope.id]


async def test_an_erased_contacts_events_keep_no_data_and_later_ones_are_not_logged(
    partners: Partners,
) -> None:
    venue = unique_name("venue-")
    reader = partner_of(venue)
    contact_id = unique_name("contact-")
    own = await publish(partners, contact_updated(venue, contact_id))
    deal = await publish(partners, opportunity(venue, contact_id=contact_id))
    unrelated = await publish(partners, opportunity(venue))
    await log_of(partners, reader, 3)

    erased = ContactErased(contact_id=contact_id, venue_id=venue, erased_at=datetime.now(UTC))
    erasure = await partners.publish(erased, contact_id)

    async def erased_shown() -> list[dict[str, Any]] | None:
        items, _ = await walk(partners, reader)
        return items if len(items) == 2 and items[-1]["id"] == erasure else None

    items = await eventually(erased_shown, timeout=60)
    assert [e["id"] for e in items] == [unrelated, erasure]
    assert items[-1]["data"] == {
        "contactId": contact_id,
        "venueId": venue,
        "erasedAt": items[-1]["data"]["erasedAt"],
    }
    assert own not in str(items) and deal not in str(items)
    stored = await partners.runtime.store["event_log"].find({"venueId": venue}).to_list(None)
    assert all("Ana" not in str(document) for document in stored)

    late = await publish(partners, contact_updated(venue, contact_id))
    processed = partners.runtime.store["processed_events"]
    await eventually(lambda: processed.find_one({"_id": f"events.log|{late}"}), timeout=60)
    items, _ = await walk(partners, reader)
    assert [e["id"] for e in items] == [unrelated, erasure]
