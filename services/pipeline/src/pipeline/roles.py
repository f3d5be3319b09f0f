"""Who may do what in the pipeline."""

from __future__ import annotations

from typing import Final

from gala.identity import Role

WRITERS: Final = frozenset({Role.ADMIN, Role.SALES})
"""Work with opportunities, stages and rooms."""
READERS: Final = frozenset({Role.ADMIN, Role.SALES, Role.PROJECT_MANAGER})
"""Read opportunities, the stages and the board."""
ADMINS: Final = frozenset({Role.ADMIN})
"""Change the venue's pipeline settings (its currency)."""
