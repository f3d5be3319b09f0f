"""An import's burst of contact events reaches the projects' people copies in a few
bulk writes, with what one by one would write."""

from gala.testing import contact_import_burst
from projects.subscriptions import contacts_changed


async def test_a_run_of_contact_events_is_kept_in_a_few_bulk_writes(infra):
    burst = await contact_import_burst(infra, contacts_changed)
    store, venue, ids, commands = burst.store, burst.venue, burst.ids, burst.commands
    try:
        # the copies' read and write, and one look for projects of the new addresses
        assert commands <= 4  # was two per event and a project lookup: 153
        copies = {d["_id"]: d async for d in store["contacts"].find({"venueId": venue})}
        assert len(copies) == 50
        assert copies[ids[0]]["email"] == "new@wed.example"
        assert copies[ids[7]]["email"] == "g7@wed.example" and copies[ids[7]]["erased"] is False
    finally:
        await store.client.drop_database(store.db.name)
        await store.close()
