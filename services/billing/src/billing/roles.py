"""Who may do what with billing."""

from __future__ import annotations

from typing import Final

from gala.identity import Role

ADMINS: Final = frozenset({Role.ADMIN})
"""Change the venue's billing policy."""
WRITERS: Final = frozenset({Role.ADMIN, Role.SALES})
"""Add, change, record and cancel payments."""
READERS: Final = frozenset({Role.ADMIN, Role.SALES, Role.PROJECT_MANAGER})
"""See every payment of the venue (a CLIENT sees those of their own projects)."""
DOCUMENT_STAFF: Final = frozenset({Role.ADMIN, Role.SALES, Role.PROJECT_MANAGER})
"""Upload, replace and see the venue's documents (a CLIENT sees and signs their own)."""
