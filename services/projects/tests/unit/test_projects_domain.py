"""The project aggregate and its tasks, without infrastructure."""

from datetime import UTC, datetime, timedelta

import pytest

from gala.contracts.projects import ProjectStatus, TaskStatus
from gala.errors import Conflict, InvalidInput, NotFound
from projects.projects.domain import (
    InvalidTransition,
    Project,
    ProjectClosed,
    ProjectPatch,
    Won,
    project_id_for,
)
from projects.tasks.domain import Placement, TaskPatch
from projects.templates.domain import BUILT_IN, VenueTemplates

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
EVENT = datetime(2027, 6, 12, 15, 0, tzinfo=UTC)


def won(**fields) -> Won:
    values = {
        "venue_id": "venue-1",
        "opportunity_id": "opp-1",
        "contact_id": "contact-1",
        "name": "Smith wedding",
        "event_type": "wedding",
        "event_date": EVENT,
        "as_of": NOW,
    }
    return Won(**{**values, **fields})


def project(**fields) -> Project:
    w = won(**fields)
    made = Project.from_won(w, VenueTemplates(w.venue_id).for_event(w.event_type), [], NOW)
    made.collect_events()
    return made


def types(p: Project) -> list[str]:
    return [e.TYPE for e in p.collect_events()]


def test_a_won_opportunity_makes_a_project_with_the_template_tasks():
    p = Project.from_won(won(), BUILT_IN["WEDDING"], ["client-2", "client-1", "client-2"], NOW)
    assert p.id == project_id_for("opp-1") == project(opportunity_id="opp-1").id
    assert p.id != project_id_for("opp-2")
    assert (p.start_date, p.end_date) == (EVENT, EVENT + timedelta(hours=12))
    assert p.status is ProjectStatus.ACTIVE and p.client_ids == ["client-1", "client-2"]
    assert [t.title for t in p.tasks] == [t.title for t in BUILT_IN["WEDDING"].tasks]
    assert p.tasks[0].due_date == EVENT - timedelta(days=60) and p.tasks[0].follows_event
    assert types(p) == ["gala.project.created.v1"] + ["gala.task.created.v1"] * 5
    assert p.client_link != project().client_link and len(p.client_link) >= 43


def test_template_keys_ignore_case_and_spacing_and_fall_back_to_default():
    templates = VenueTemplates("v")
    assert templates.for_event(" Wedding ").event_type == "WEDDING"
    assert templates.for_event("Barn   dance").event_type == "DEFAULT"
    assert templates.for_event(None).event_type == "DEFAULT"
    assert templates.for_event("x" * 500).event_type == "DEFAULT"


def test_status_moves_between_active_and_on_hold_then_to_a_final_one():
    p = project()
    assert p.move_to(ProjectStatus.ON_HOLD, NOW)
    assert p.move_to(ProjectStatus.ACTIVE, NOW)
    assert not p.move_to(ProjectStatus.ACTIVE, NOW)
    assert p.move_to(ProjectStatus.CANCELLED, NOW)
    with pytest.raises(InvalidTransition) as refused:
        p.move_to(ProjectStatus.ACTIVE, NOW)
    assert isinstance(refused.value, Conflict)
    with pytest.raises(ProjectClosed):
        p.change(ProjectPatch(name="Again"), NOW)
    with pytest.raises(ProjectClosed):
        p.add_task(title="Late", now=NOW)
    assert types(p) == ["gala.project.status_changed.v1"] * 3


def test_details_change_only_when_valid_and_settings_are_not_published():
    p = project()
    with pytest.raises(InvalidInput):
        p.change(ProjectPatch(end_date=EVENT - timedelta(hours=1)), NOW)
    assert not p.change(ProjectPatch(name=" Smith   wedding "), NOW)
    assert p.change(ProjectPatch(settings={"theme": "ivory"}), NOW)
    assert types(p) == []
    assert p.change(ProjectPatch(name="Smith & Jones"), NOW)
    assert types(p) == ["gala.project.updated.v1"]


def test_a_new_event_date_moves_dates_and_template_tasks_not_redated_by_hand():
    p = project()
    p.change(ProjectPatch(start_date=EVENT - timedelta(hours=2)), NOW)  # setup starts earlier
    pinned = p.tasks[1].id
    p.change_task(pinned, TaskPatch(due_date=EVENT - timedelta(days=30)), NOW)
    by_hand = p.add_task(title="Flowers", due_date=EVENT - timedelta(days=1), now=NOW)
    p.collect_events()

    moved = EVENT + timedelta(days=7)
    assert p.follow_event_date(moved, NOW + timedelta(minutes=1), NOW)
    assert p.start_date == moved - timedelta(hours=2)
    assert p.end_date == moved + timedelta(hours=12)
    assert p.tasks[0].due_date == moved - timedelta(days=60)
    assert p.task(pinned).due_date == EVENT - timedelta(days=30)
    assert p.task(by_hand.id).due_date == EVENT - timedelta(days=1)
    assert types(p) == ["gala.project.updated.v1"] + ["gala.task.updated.v1"] * 4
    # an older change arriving late, and the same change again, do nothing
    assert not p.follow_event_date(EVENT, NOW, NOW)
    assert not p.follow_event_date(moved, NOW + timedelta(minutes=1), NOW)
    assert p.start_date == moved - timedelta(hours=2)


def test_positions_are_the_order_and_moves_keep_every_task_once():
    p = project()
    ids = [t.id for t in p.tasks]
    added = p.add_task(title="Cake", now=NOW, placement=Placement(before=ids[0]))
    assert p.position(added.id) == 0
    p.move_task(added.id, Placement(after=ids[-1]), NOW)
    assert [t.id for t in p.tasks] == [*ids, added.id]
    p.move_task(ids[4], Placement(before=ids[0]), NOW)
    assert [t.id for t in p.tasks] == [ids[4], *ids[:4], added.id]
    with pytest.raises(InvalidInput):
        p.move_task(ids[0], Placement(after=ids[0]), NOW)
    with pytest.raises(InvalidInput):
        p.move_task(ids[0], Placement(after="elsewhere"), NOW)
    assert [t.id for t in p.tasks] == [ids[4], *ids[:4], added.id]  # a refused move: no change
    p.delete_task(ids[2], NOW)
    assert len(p.tasks) == 5 and ids[2] not in [t.id for t in p.tasks]
    with pytest.raises(NotFound):
        p.task(ids[2])
    events = p.collect_events()
    assert [e.TYPE for e in events] == [
        "gala.task.created.v1",
        "gala.task.moved.v1",
        "gala.task.moved.v1",
        "gala.task.deleted.v1",
    ]
    assert events[1].position == 5 and events[1].previous_position == 0


def test_a_task_change_records_what_changed():
    p = project()
    task = p.tasks[0]
    p.change_task(task.id, TaskPatch(assignee_id="staff-1", status=TaskStatus.COMPLETED), NOW)
    assert task.completed_at == NOW
    assert types(p) == [
        "gala.task.assigned.v1",
        "gala.task.status_changed.v1",
        "gala.task.completed.v1",
    ]
    p.change_task(task.id, TaskPatch(status=TaskStatus.IN_PROGRESS, title="Tasting"), NOW)
    assert task.completed_at is None
    assert types(p) == ["gala.task.updated.v1", "gala.task.status_changed.v1"]
    assert TaskPatch(status=TaskStatus.TODO).only_status
    assert not TaskPatch(status=TaskStatus.TODO, title="x").only_status
