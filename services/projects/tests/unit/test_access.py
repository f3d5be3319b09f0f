"""Who may know of a project and its tasks (pure rules, no store)."""

from datetime import UTC, datetime

import pytest

from gala.identity import Principal, Role
from projects.projects.domain import Project, Won
from projects.projects.repository import ProjectFilter
from projects.projects.service import can_see, scoped
from projects.tasks.domain import TaskPatch
from projects.tasks.service import can_see_task
from projects.templates.domain import BUILT_IN

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def project() -> Project:
    won = Won("venue-1", "opp-1", "contact-1", "Smith wedding", "WEDDING", NOW, NOW)
    return Project.from_won(won, BUILT_IN["WEDDING"], [], NOW)


def who(role: Role, user: str = "user-1", venue: str = "venue-1") -> Principal:
    return Principal(user_id=user, venue_id=venue, role=role)


def test_a_project_is_assigned_to_whoever_has_one_of_its_tasks_and_no_longer():
    p = project()
    task = p.add_task(title="Flowers", now=NOW, assignee_id="staff-1")
    assert p.is_assigned("staff-1") and not p.is_assigned("staff-2")
    p.change_task(task.id, TaskPatch(assignee_id="staff-2"), NOW)
    assert p.is_assigned("staff-2") and not p.is_assigned("staff-1")
    p.delete_task(task.id, NOW)
    assert not p.is_assigned("staff-2")


@pytest.mark.parametrize("role", [Role.ADMIN, Role.PROJECT_MANAGER, Role.SALES])
def test_the_venue_s_managers_and_sales_see_every_project_of_it_only(role):
    p = project()
    assert can_see(who(role), p)
    assert not can_see(who(role, venue="venue-2"), p)
    assert scoped(who(role), ProjectFilter()) == ProjectFilter()


def test_staff_see_only_projects_where_a_task_is_theirs_and_all_its_tasks():
    p = project()
    internal = next(t for t in p.tasks if t.is_internal)
    staff = who(Role.STAFF, "staff-1")
    assert not can_see(staff, p) and not can_see_task(staff, p, internal)
    p.add_task(title="Flowers", now=NOW, assignee_id="staff-1")
    assert can_see(staff, p) and can_see_task(staff, p, internal)
    assert not can_see(who(Role.STAFF, "staff-2"), p)
    assert scoped(staff, ProjectFilter()) == ProjectFilter(assignee_id="staff-1")


def test_clients_see_their_projects_and_only_the_client_visible_tasks():
    p = project()
    p.client_ids = ["client-1"]
    internal = next(t for t in p.tasks if t.is_internal)
    visible = next(t for t in p.tasks if not t.is_internal)
    client = who(Role.CLIENT, "client-1")
    assert can_see(client, p) and can_see_task(client, p, visible)
    assert not can_see_task(client, p, internal)
    assert not can_see(who(Role.CLIENT, "client-2"), p)
    assert scoped(client, ProjectFilter()) == ProjectFilter(client_id="client-1")
