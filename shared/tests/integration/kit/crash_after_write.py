"""Write a widget and its pending event, then die before any relay runs (as a crash would).

Usage: python crash_after_write.py TAG WIDGET_ID DATABASE
"""

import asyncio
import os
import sys

from kernel_samples import WidgetKit

from gala.events import Outbox
from gala.settings import Settings
from gala.store import Store


async def main(tag: str, widget_id: str, database: str) -> None:
    kit = WidgetKit(tag)
    store = Store(Settings().mongo_url, database)
    outbox = Outbox(tag)  # no relay: nothing is published before the crash
    entry = outbox.entry(kit.made(widget_id=widget_id, size=3), subject=widget_id, venue_id="v")
    await outbox.insert(store["widgets"], {"_id": widget_id, "size": 3}, [entry])
    print(entry["id"], flush=True)
    os._exit(137)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
