"""``python -m partners --role api|worker|all``"""

from gala.app import run
from partners.bootstrap import service

run(service)
