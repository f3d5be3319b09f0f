"""An import's burst of contact events reaches the pipeline's contact copy (and the
names its opportunities show) in a few bulk writes, with what one by one would write."""

from datetime import datetime, timedelta

from gala.store import Store
from gala.testing import contact_import_burst
from pipeline.subscriptions import copy_contacts


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

    burst = await contact_import_burst(infra, copy_contacts, prepare)
    store, venue, ids, commands = burst.store, burst.venue, burst.ids, burst.commands
    try:
        assert commands <= 5  # was three per event: 153 (the new copies: one insert)
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
