"""A worker whose handler dies mid-way through the first event it sees.

Usage: python crashing_worker.py TAG DATABASE
"""

import asyncio
import sys

from kernel_samples import WidgetKit

from gala.app import ProcessRole, Runtime
from gala.settings import Settings


async def main(tag: str, database: str) -> None:
    kit = WidgetKit(tag, crash=True)
    runtime = Runtime(kit.definition(), Settings(mongo_database=database), ProcessRole.WORKER)
    await runtime.start()
    await asyncio.sleep(60)  # the handler exits the process long before this
    sys.exit("the worker never received the event")


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:3]))
