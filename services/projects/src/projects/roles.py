"""Who may do what with projects and tasks."""

from __future__ import annotations

from typing import Final

from gala.identity import Role

MANAGERS: Final = frozenset({Role.ADMIN, Role.PROJECT_MANAGER})
"""Run projects: change them, their tasks, the client link and the venue's templates."""
TEAM: Final = frozenset({Role.ADMIN, Role.PROJECT_MANAGER, Role.SALES, Role.STAFF})
"""The venue's staff: see every project and task of the venue; an assignee may change
their own task's status."""
EVERYONE: Final = frozenset(Role)
"""Staff and clients: a CLIENT sees only their own projects and client-visible tasks."""
