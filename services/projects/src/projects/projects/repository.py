"""The only module that speaks to the store about projects (and the tasks inside them).

One document per project in ``projects``: its tasks in order (a task's position is its
index), its pending events (the outbox), a ``version`` every save checks. ``settings``
is stored as JSON text: kept exactly as given, with keys the store would refuse.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING

from gala.aggregates import AggregateRepository, Codec
from gala.contracts.projects import ProjectStatus, TaskEvent, TaskStatus
from gala.events.model import Event
from gala.identity import venue_scoped
from gala.store import Document, Index, PageRequest
from gala.values import as_utc, required_utc
from projects.projects.domain import Project
from projects.tasks.domain import NO_DUE_DATE, Task

COLLECTION = "projects"
SORT: Sequence[tuple[str, int]] = [("startDate", ASCENDING)]


def _listing_indexes() -> list[Index]:
    """Each equality filter the listing offers (a CLIENT's projects by ``clientIds``, a
    STAFF user's by their tasks' ``assigneeId``), then its order (start date) and the id."""
    indexes = [Index(COLLECTION, [("venueId", ASCENDING), ("startDate", ASCENDING), ("_id", 1)])]
    for name in ("status", "opportunityId", "clientIds", "tasks.assigneeId"):
        keys = [("venueId", ASCENDING), (name, ASCENDING), ("startDate", ASCENDING), ("_id", 1)]
        indexes.append(Index(COLLECTION, keys))
    return indexes


INDEXES: Sequence[Index] = (
    *_listing_indexes(),
    Index(COLLECTION, [("clientLink", ASCENDING)], unique=True),
    Index(COLLECTION, [("venueId", ASCENDING), ("contactId", ASCENDING)]),
    # a task by its id, and the tasks across projects (see tasks/repository.py)
    Index(COLLECTION, [("tasks.id", ASCENDING)]),
    Index(COLLECTION, [("venueId", 1), ("tasks.assigneeId", 1), ("tasks.dueSort", 1)]),
    Index(COLLECTION, [("venueId", 1), ("tasks.dueSort", 1)]),
)


def task_document(t: Task, position: int) -> Document:
    return {
        "id": t.id,
        "position": position,
        "title": t.title,
        "description": t.description,
        "status": t.status.value,
        "assigneeId": t.assignee_id,
        "dueDate": t.due_date,
        "dueSort": t.due_date or NO_DUE_DATE,
        "isInternal": t.is_internal,
        "daysBefore": t.days_before,
        "dueByHand": t.due_by_hand,
        "completedAt": t.completed_at,
        "createdAt": t.created_at,
        "updatedAt": t.updated_at,
    }


def task_from(d: Mapping[str, Any]) -> Task:
    created, updated = as_utc(d["createdAt"]), as_utc(d["updatedAt"])
    assert created is not None and updated is not None
    days = d.get("daysBefore")
    return Task(
        id=d["id"],
        title=d["title"],
        description=d.get("description"),
        status=TaskStatus(d["status"]),
        assignee_id=d.get("assigneeId"),
        due_date=as_utc(d.get("dueDate")),
        is_internal=bool(d.get("isInternal")),
        days_before=None if days is None else int(days),
        due_by_hand=bool(d.get("dueByHand")),
        completed_at=as_utc(d.get("completedAt")),
        created_at=created,
        updated_at=updated,
    )


def to_document(p: Project) -> Document:
    return {
        "_id": p.id,
        "venueId": p.venue_id,
        "opportunityId": p.opportunity_id,
        "contactId": p.contact_id,
        "name": p.name,
        "status": p.status.value,
        "eventType": p.event_type,
        "eventDate": p.event_date,
        "startDate": p.start_date,
        "endDate": p.end_date,
        "clientLink": p.client_link,
        "clientIds": list(p.client_ids),
        "settings": None if p.settings is None else json.dumps(p.settings),
        "tasks": [task_document(t, i) for i, t in enumerate(p.tasks)],
        "opportunityAsOf": p.opportunity_as_of,
        "createdAt": p.created_at,
        "updatedAt": p.updated_at,
        "version": p.version,
    }


def from_document(d: Mapping[str, Any]) -> Project:
    settings = d.get("settings")
    return Project(
        id=d["_id"],
        venue_id=d["venueId"],
        opportunity_id=d["opportunityId"],
        contact_id=d.get("contactId"),
        name=d["name"],
        status=ProjectStatus(d["status"]),
        event_type=d.get("eventType"),
        event_date=required_utc(d["eventDate"]),
        start_date=required_utc(d["startDate"]),
        end_date=required_utc(d["endDate"]),
        client_link=d["clientLink"],
        client_ids=list(d.get("clientIds") or []),
        settings=None if settings is None else json.loads(settings),
        tasks=[task_from(t) for t in d.get("tasks") or []],
        opportunity_as_of=required_utc(d["opportunityAsOf"]),
        created_at=required_utc(d["createdAt"]),
        updated_at=required_utc(d["updatedAt"]),
        version=int(d["version"]),
    )


@dataclass(frozen=True)
class ProjectFilter:
    status: ProjectStatus | None = None
    opportunity_id: str | None = None
    starts_from: datetime | None = None
    starts_before: datetime | None = None
    client_id: str | None = None
    """Only the projects this CLIENT user belongs to."""
    assignee_id: str | None = None
    """Only the projects with a task assigned to this user (what a STAFF user sees): read
    from the tasks inside the project document, so it changes in the very write that
    (un)assigns a task."""

    def query(self, venue_id: str) -> Document:
        query: Document = venue_scoped(venue_id)
        if self.status is not None:
            query["status"] = self.status.value
        if self.opportunity_id is not None:
            query["opportunityId"] = self.opportunity_id
        if self.client_id is not None:
            query["clientIds"] = self.client_id
        if self.assignee_id is not None:
            query["tasks.assigneeId"] = self.assignee_id
        dates: Document = {}
        if self.starts_from is not None:
            dates["$gte"] = self.starts_from
        if self.starts_before is not None:
            dates["$lt"] = self.starts_before
        if dates:
            query["startDate"] = dates
        return query


class ProjectRepository(AggregateRepository[Project]):
    COLLECTION = COLLECTION
    codec = Codec(to_document, from_document)

    def subject(self, aggregate: Project, event: Event) -> str:
        """A task's events are about the task."""
        return event.task_id if isinstance(event, TaskEvent) else aggregate.id

    async def with_task(self, venue_id: str, task_id: str) -> Project | None:
        return await self.find_one(venue_scoped(venue_id, {"tasks.id": task_id}))

    async def by_client_link(self, link: str) -> Project | None:
        return await self.find_one({"clientLink": link})

    async def ids_of_contacts(self, venue_id: str, contact_ids: Sequence[str]) -> list[str]:
        if not contact_ids:
            return []
        cursor = self.collection.find(
            venue_scoped(venue_id, {"contactId": {"$in": list(contact_ids)}}), {"_id": 1}
        )
        return [d["_id"] async for d in cursor]

    async def contacts_with_projects(self, venue_id: str, contact_ids: Sequence[str]) -> set[str]:
        """Which of these contacts have a project."""
        if not contact_ids:
            return set()
        cursor = self.collection.find(
            venue_scoped(venue_id, {"contactId": {"$in": list(contact_ids)}}), {"contactId": 1}
        )
        return {d["contactId"] async for d in cursor}

    async def page(
        self, venue_id: str, where: ProjectFilter, limit: int, cursor: str | None
    ) -> tuple[list[Project], str | None]:
        return await self.find_page(
            where.query(venue_id), PageRequest(sort=SORT, limit=limit, cursor=cursor)
        )

    async def explain(
        self, venue_id: str, where: ProjectFilter, limit: int, cursor: str | None
    ) -> Document:
        """The store's plan for :meth:`page` (tests prove listings read through an index)."""
        return await self.explain_page(
            where.query(venue_id), PageRequest(sort=SORT, limit=limit, cursor=cursor)
        )
