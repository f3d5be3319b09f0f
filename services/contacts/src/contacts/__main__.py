"""``python -m contacts --role api|worker|all``"""

from contacts.bootstrap import service
from gala.app import run

run(service)
