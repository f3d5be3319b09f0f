"""Use cases for projects: made from won opportunities, run by the venue's team, seen
by their clients.

Staff use cases are scoped to the caller's venue (another venue's project is "not
found"). ADMIN and PROJECT_MANAGER change projects; SALES reads every project of the
venue; a STAFF user reads only the projects where a task is assigned to them, and a
CLIENT only the projects they belong to: any other project is "not found" for them,
whatever they ask of it (a project they see but may not change is "forbidden"). Who
sees a project is decided on each request from the project as stored, so taking a
user's last task of a project away takes the project away at once. Every change is
computed on a fresh read and saved only onto that version, else recomputed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime

from gala.aggregates import Within
from gala.concurrency import KeyedLocks, save_attempts
from gala.contracts.projects import ProjectStatus
from gala.identity import Principal, Role, ensure_role
from gala.store import utc_now
from gala.values import Unset
from projects.people.service import People
from projects.projects.domain import (
    Project,
    ProjectChangedConcurrently,
    ProjectNotFound,
    ProjectPatch,
    Won,
    project_id_for,
)
from projects.projects.repository import ProjectFilter, ProjectRepository
from projects.roles import EVERYONE, MANAGERS, WHOLE_VENUE
from projects.templates.repository import TemplateRepository

Clock = Callable[[], datetime]
LINK_MAX = 200


PROJECT_LOCKS = KeyedLocks()
"""Changes of one project in this process wait for each other (see KeyedLocks)."""


async def change_project(
    projects: ProjectRepository,
    load: Callable[[], Awaitable[Project | None]],
    apply: Callable[[Project], bool],
) -> Project:
    """Load, apply, save onto the version read; again on a lost race. ``apply`` answers
    whether it changed anything (nothing changed: nothing saved) and raises to refuse."""
    first = await load()
    if first is None:
        raise ProjectNotFound()
    async with PROJECT_LOCKS.hold(first.id):
        async for _ in save_attempts():
            project = await load()  # again, now that this process's turn has come
            if project is None:
                raise ProjectNotFound()
            if not apply(project):
                return project
            if await projects.save(project):
                return project
    raise ProjectChangedConcurrently()


def can_see(principal: Principal, project: Project) -> bool:
    """Whether the caller may know of the project (else it is "not found" to them)."""
    if principal.venue_id != project.venue_id:
        return False
    if principal.role in WHOLE_VENUE:
        return True
    if principal.role is Role.STAFF:
        return project.is_assigned(principal.user_id)
    if principal.role is Role.CLIENT:
        return principal.user_id in project.client_ids
    return False


def scoped(principal: Principal, where: ProjectFilter) -> ProjectFilter:
    """The listing's filter narrowed to what the caller may see (see ``can_see``)."""
    if principal.role is Role.STAFF:
        return replace(where, assignee_id=principal.user_id)
    if principal.role is Role.CLIENT:
        return replace(where, client_id=principal.user_id)
    return where


class ProjectService:
    def __init__(
        self,
        projects: ProjectRepository,
        templates: TemplateRepository,
        people: People,
        clock: Clock = utc_now,
    ) -> None:
        self._projects = projects
        self._templates = templates
        self._people = people
        self._clock = clock

    # --- staff and clients ------------------------------------------------------------

    async def page(
        self, principal: Principal, where: ProjectFilter, limit: int, cursor: str | None
    ) -> tuple[list[Project], str | None]:
        ensure_role(principal, EVERYONE, "list projects")
        return await self._projects.page(
            principal.venue_id, scoped(principal, where), limit, cursor
        )

    async def get(self, principal: Principal, project_id: str) -> Project:
        return await self.visible(principal, project_id)

    async def visible(self, principal: Principal, project_id: str) -> Project:
        """The project, if the caller may see it; else 404."""
        ensure_role(principal, EVERYONE, "see projects")
        project = await self._projects.get(principal.venue_id, project_id)
        if project is None or not can_see(principal, project):
            raise ProjectNotFound()
        return project

    async def ensure_may(
        self, principal: Principal, project_id: str, roles: frozenset[Role], doing: str
    ) -> None:
        """404 if the caller may not see the project, then 403 unless they have a role
        of ``roles`` (a project someone may not see does not exist for them)."""
        if principal.role not in roles:
            await self.visible(principal, project_id)
        ensure_role(principal, roles, doing)

    async def update(
        self,
        principal: Principal,
        project_id: str,
        patch: ProjectPatch,
        status: ProjectStatus | None = None,
    ) -> Project:
        """Change details, then the status, in one save."""
        await self.ensure_may(principal, project_id, MANAGERS, "change projects")
        if not isinstance(patch.client_ids, Unset):
            await self._check_clients(principal.venue_id, patch.client_ids)
        now = self._clock()

        def change(project: Project) -> bool:
            changed = project.change(patch, now)
            if status is not None:
                changed |= project.move_to(status, now)
            return changed

        return await self._change(principal.venue_id, project_id, change)

    async def rotate_client_link(self, principal: Principal, project_id: str) -> Project:
        await self.ensure_may(principal, project_id, MANAGERS, "rotate client links")
        now = self._clock()

        def rotate(project: Project) -> bool:
            project.rotate_client_link(now)
            return True

        return await self._change(principal.venue_id, project_id, rotate)

    async def portal(self, client_link: str) -> Project:
        """The project behind a client link; a wrong or rotated link is "not found"."""
        if len(client_link) > LINK_MAX:
            raise ProjectNotFound()
        project = await self._projects.by_client_link(client_link)
        if project is None:
            raise ProjectNotFound()
        return project

    # --- from events ------------------------------------------------------------------

    async def won_many(self, wons: Sequence[tuple[Won, Within]]) -> int:
        """``won`` for a run of won opportunities (a burst of them): per venue one read of
        the projects that exist, of its templates and of the contacts' clients, and one
        insert; each project's events recorded ``within`` the context of the event that
        won it. Answers how many projects it made."""
        made = 0
        by_venue: dict[str, dict[str, tuple[Won, Within]]] = {}
        for won, within in wons:  # an opportunity won twice in the run: its first
            by_venue.setdefault(won.venue_id, {}).setdefault(
                project_id_for(won.opportunity_id), (won, within)
            )
        for venue_id, by_project in by_venue.items():
            existing = await self._projects.ids_existing(venue_id, list(by_project))
            new = [entry for pid, entry in by_project.items() if pid not in existing]
            if not new:
                continue
            templates = await self._templates.get(venue_id)
            clients = await self._people.clients_of_contacts(
                venue_id, sorted({w.contact_id for w, _ in new if w.contact_id is not None})
            )
            now = self._clock()
            projects = [
                (
                    Project.from_won(
                        won,
                        templates.for_event(won.event_type),
                        clients.get(won.contact_id or "", []),
                        now,
                    ),
                    within,
                )
                for won, within in new
            ]
            made += len(await self._projects.insert_new(projects))
        return made

    async def follow_event_date(
        self, venue_id: str, opportunity_id: str, event_date: datetime | None, as_of: datetime
    ) -> None:
        """The opportunity changed: its project (if any) follows a new event date."""
        project_id = project_id_for(opportunity_id)
        if await self._projects.get(venue_id, project_id) is None:
            return
        now = self._clock()
        await self._change(
            venue_id, project_id, lambda p: p.follow_event_date(event_date, as_of, now)
        )

    async def link_clients(self, venue_id: str, contact_ids: list[str]) -> None:
        """Add the CLIENT users of these contacts to the contacts' projects."""
        for project_id in await self._projects.ids_of_contacts(venue_id, contact_ids):
            project = await self._projects.get(venue_id, project_id)
            if project is None:
                continue
            clients = await self._people.clients_of_contact(venue_id, project.contact_id)
            if not set(clients) - set(project.client_ids):
                continue
            await self._change(venue_id, project_id, _adding(clients, self._clock()))

    async def _change(
        self, venue_id: str, project_id: str, apply: Callable[[Project], bool]
    ) -> Project:
        return await change_project(
            self._projects, lambda: self._projects.get(venue_id, project_id), apply
        )

    async def _check_clients(self, venue_id: str, user_ids: list[str]) -> None:
        for user_id in user_ids:
            await self._people.require_client(venue_id, user_id)


def _adding(clients: list[str], now: datetime) -> Callable[[Project], bool]:
    return lambda project: project.add_clients(clients, now)
