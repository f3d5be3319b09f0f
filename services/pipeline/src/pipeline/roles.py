"""Who may do what in the pipeline."""

from __future__ import annotations

from typing import Final

from gala.errors import Forbidden
from gala.identity import Principal, Role

WRITERS: Final = frozenset({Role.ADMIN, Role.SALES})
"""Work with opportunities, stages and rooms."""
READERS: Final = frozenset({Role.ADMIN, Role.SALES, Role.PROJECT_MANAGER})
"""Read opportunities, the stages and the board."""
ADMINS: Final = frozenset({Role.ADMIN})
"""Change the venue's pipeline settings (its currency)."""


def ensure_role(principal: Principal, roles: frozenset[Role], doing: str) -> None:
    if principal.role not in roles:
        allowed = " or ".join(sorted(role.value for role in roles))
        raise Forbidden(f"Only {allowed} may {doing}.")
