"""An import's burst of contact events reaches the pipeline's contact copy (and the
names its opportunities show) in a few bulk writes, with what one by one would write."""

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from pymongo import monitoring

from gala.contracts.contacts import ContactCreated, ContactUpdated
from gala.events import EventContext, Outbox
from gala.store import Store
from gala.testing import envelope_of_event, unique_name
from pipeline.subscriptions import copy_contacts


class Commands(monitoring.CommandListener):
    """Counts the commands sent to one database."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.count = 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.database_name == self.database:
            self.count += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def contact_event(kind, venue: str, contact_id: str, name: str, email: str):
    return kind(
        contact_id=contact_id, venue_id=venue, name=name, email=email,
        lead_source="WEBSITE", status="LEAD", lead_heat=10,
    )  # fmt: skip


def a_run(store: Store, infra, events, start: datetime) -> list:
    """The events as the consumer hands a batch handler a run of them (one partition)."""
    return [
        (
            event,
            EventContext(
                replace(
                    envelope_of_event(event, event.contact_id), time=start + timedelta(seconds=n)
                ),
                event.TOPIC,
                0,
                n,
                store,
                Outbox("test"),
                infra,
            ),
        )
        for n, event in enumerate(events)
    ]


async def import_burst(infra, handler, prepare=None):
    """An import's burst: 50 new contacts, then the first one renamed, as one run; the
    store, the venue and the commands the handler sent."""
    database = unique_name("bulk_copies_")
    listener = Commands(database)
    monitoring.register(listener)  # for the clients made from now on
    store = Store(infra.mongo_url, database)
    venue = unique_name("venue-")
    ids = [str(uuid.uuid4()) for _ in range(50)]
    events = [contact_event(ContactCreated, venue, c, f"Guest {n}", f"g{n}@wed.example")
              for n, c in enumerate(ids)]  # fmt: skip
    events.append(contact_event(ContactUpdated, venue, ids[0], "Renamed", "new@wed.example"))
    start = datetime.now(UTC)
    if prepare is not None:
        await prepare(store, venue, ids, start)
    before = listener.count
    await handler(a_run(store, infra, events, start))
    return store, venue, ids, listener.count - before


async def test_a_run_of_contact_events_is_copied_in_a_few_bulk_writes(infra):
    async def prepare(store: Store, venue: str, ids: list[str], start: datetime) -> None:
        await store["opportunities"].insert_one(
            {"_id": "o-1", "venueId": venue, "contactId": ids[0], "contactName": "Old"}
        )
        # an older event of the second contact arrives late: the newer copy stays
        await store["contacts"].insert_one(
            {"_id": ids[1], "venueId": venue, "name": "Newer", "erased": False,
             "asOf": start + timedelta(days=1)}
        )  # fmt: skip

    store, venue, ids, commands = await import_burst(infra, copy_contacts, prepare)
    try:
        assert commands <= 4  # was three per event: 153
        copies = {d["_id"]: d async for d in store["contacts"].find({"venueId": venue})}
        assert len(copies) == 50
        assert copies[ids[0]]["name"] == "Renamed"
        assert copies[ids[1]]["name"] == "Newer"
        assert copies[ids[7]]["name"] == "Guest 7" and copies[ids[7]]["erased"] is False
        opportunity = await store["opportunities"].find_one({"_id": "o-1"})
        assert opportunity["contactName"] == "Renamed"
    finally:
        await store.client.drop_database(store.db.name)
        await store.close()
