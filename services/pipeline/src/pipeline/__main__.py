"""``python -m pipeline --role api|worker|all``"""

from gala.app import run
from pipeline.bootstrap import service

run(service)
