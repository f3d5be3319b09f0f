"""``python -m pipeline rebuild-board [--venue V]``: recompute the board's read model
from the opportunities, for one venue or for every venue that has opportunities.

Safe while the service runs and writes (see :meth:`BoardReadModel.rebuild`): every
write it makes is a compare-and-set on a bucket's revision that keeps, per opportunity,
the newer version, so a change that lands meanwhile is never undone. It is a command of
the pipeline's own package (not ``gala ops``) because it needs the pipeline's store and
its read model's code, as the service's processes do; it reads the same settings
(``GALA_MONGO_URL``, ``GALA_MONGO_DATABASE``, and the secrets every process needs).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence

from gala.settings import Settings, load_settings
from gala.store import Store
from pipeline.board.repository import INDEXES, BoardRepository
from pipeline.board.service import BoardReadModel

COMMAND = "rebuild-board"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=f"python -m pipeline {COMMAND}",
        description="Recompute the board's read model from the opportunities (safe while"
        " the service runs).",
    )
    parser.add_argument("--venue", default=None, help="only this venue (default: every venue)")
    return parser.parse_args(list(argv))


async def rebuild(store: Store, venue: str | None) -> dict[str, int]:
    """Rebuild one venue's read model or every venue's; opportunities read per venue."""
    await store.ensure_indexes(list(INDEXES))
    model = BoardReadModel(BoardRepository(store))
    venues = [venue] if venue is not None else await model.venues()
    return {v: await model.rebuild(v) for v in venues}


async def _main(settings: Settings, venue: str | None) -> None:
    store = Store(settings.mongo_url, settings.database_name("pipeline"))
    try:
        for v, read in (await rebuild(store, venue)).items():
            print(f"rebuilt the board of {v}: {read} opportunities", flush=True)
    finally:
        await store.close()


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    settings = load_settings(Settings)  # a bad or missing setting exits naming it
    start = time.monotonic()
    asyncio.run(_main(settings, args.venue))
    print(f"done in {time.monotonic() - start:.1f} s", flush=True)
    return 0
