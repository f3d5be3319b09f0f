"""An import's burst of contact events reaches billing's contact copies in a few bulk
writes (a read, the copies there already, the new ones), with what one by one would write."""

from datetime import datetime, timedelta

from billing.subscriptions import keep_contacts
from gala.store import Store
from gala.testing import contact_import_burst


async def test_a_run_of_contact_events_is_kept_in_a_few_bulk_writes(infra):
    async def prepare(store: Store, venue: str, ids: list[str], start: datetime) -> None:
        await store["contacts"].insert_one(  # erased: final
            {"_id": ids[1], "venueId": venue, "name": None, "email": None, "erased": True,
             "asOf": start - timedelta(days=1)}
        )  # fmt: skip

    burst = await contact_import_burst(infra, keep_contacts, prepare)
    store, venue, ids, commands = burst.store, burst.venue, burst.ids, burst.commands
    try:
        # one read, one bulk write of the copies there already, one insert of the new
        assert commands <= 3  # was one per event: 51
        copies = {d["_id"]: d async for d in store["contacts"].find({"venueId": venue})}
        assert len(copies) == 50
        assert (copies[ids[0]]["name"], copies[ids[0]]["email"]) == ("Renamed", "new@wed.example")
        assert copies[ids[1]]["erased"] is True and copies[ids[1]]["name"] is None
        assert copies[ids[7]]["email"] == "g7@wed.example"
    finally:
        await store.client.drop_database(store.db.name)
        await store.close()
