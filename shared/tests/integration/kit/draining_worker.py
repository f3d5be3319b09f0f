"""A widget worker run as production runs a service (``gala.app.run``: uvicorn, its
signal handling, the lifespan), with a slow handler, for drain tests. The store, the
broker and the database come from the ``GALA_`` environment.

Usage: python draining_worker.py TAG DELAY PORT [idempotent]
(``idempotent``: the handler counts each event id once, see ``WidgetKit.idempotent``).
"""

import sys

from kernel_samples import WidgetKit

from gala.app import run

if __name__ == "__main__":
    tag, delay, port = sys.argv[1:4]
    kit = WidgetKit(tag, delay=float(delay), idempotent="idempotent" in sys.argv[4:])
    run(kit.definition(), ["--role", "worker", "--port", port])
