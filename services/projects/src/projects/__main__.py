"""``python -m projects --role api|worker|all``"""

from gala.app import run
from projects.bootstrap import service

run(service)
