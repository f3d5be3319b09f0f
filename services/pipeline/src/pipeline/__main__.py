"""``python -m pipeline --role api|worker|all``, or ``python -m pipeline rebuild-board
[--venue V]`` (recompute the board's read model, see pipeline/board/rebuild.py)."""

import sys

from gala.app import run
from pipeline.board import rebuild
from pipeline.bootstrap import service

if sys.argv[1:2] == [rebuild.COMMAND]:
    sys.exit(rebuild.main(sys.argv[2:]))
run(service)
