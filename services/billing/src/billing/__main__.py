"""``python -m billing --role api|worker|all``"""

from billing.bootstrap import service
from gala.app import run

run(service)
