"""Who may do what with projects and tasks."""

from __future__ import annotations

from typing import Final

from gala.identity import Role

MANAGERS: Final = frozenset({Role.ADMIN, Role.PROJECT_MANAGER})
"""Run projects: change them, their tasks, the client link and the venue's templates;
the only ones who see a project's client link."""
TEAM: Final = frozenset({Role.ADMIN, Role.PROJECT_MANAGER, Role.SALES, Role.STAFF})
"""The venue's staff: read the task templates; an assignee may change their own task's
status."""
WHOLE_VENUE: Final = frozenset({Role.ADMIN, Role.PROJECT_MANAGER, Role.SALES})
"""See every project and task of the venue. A STAFF user sees only the projects where a
task is assigned to them (and every task of those); any other is "not found"."""
EVERYONE: Final = TEAM | {Role.CLIENT}
"""Staff and clients: a CLIENT sees only their own projects and client-visible tasks.
Never a partner app's key (PARTNER): it reads the venue's event log, not its projects."""
