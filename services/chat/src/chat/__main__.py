"""``python -m chat --role api|worker|all``"""

from chat.bootstrap import service
from gala.app import run

run(service)
