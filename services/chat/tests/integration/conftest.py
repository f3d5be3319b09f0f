"""The chat service on the real broker and store, served in-process (the ``all`` role),
on a database and consumer group of its own. Other services are not running: tests
publish the events they would (a project, its tasks, payments, documents)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from chat.bootstrap import service
from gala.app import ProcessRole
from gala.contracts.projects import ProjectCreated, TaskAssigned, TaskDeleted
from gala.identity import Principal, Role
from gala.settings import Settings
from gala.testing import ServiceUnderTest, eventually, own_database, running_service

EVENT_DATE = datetime(2027, 6, 12, 15, 0, tzinfo=UTC)


class Chat(ServiceUnderTest):
    """The chat service under test."""

    async def project(self, venue: str, clients: list[Principal]) -> str:
        """A project the conversation copy knows (as if its created event was consumed)."""
        project_id = f"project-{uuid.uuid4().hex[:10]}"
        created = ProjectCreated(
            project_id=project_id, venue_id=venue, opportunity_id=str(uuid.uuid4()),
            contact_id="contact-1", name="Smith wedding", status="ACTIVE",
            start_date=EVENT_DATE, end_date=EVENT_DATE + timedelta(hours=12),
            client_ids=[c.user_id for c in clients],
        )  # fmt: skip
        await self.publish(created, project_id)

        async def known() -> bool:
            found = await self.runtime.store["messages"].find_one({"projectId": project_id})
            return found is not None  # its "project created" message: the copy is there

        await eventually(known)
        return project_id

    async def assign(
        self, venue: str, project_id: str, staff: Principal, *, deleted: bool = False
    ) -> str:
        task_id = str(uuid.uuid4())
        kind = TaskDeleted if deleted else TaskAssigned
        event = kind(
            task_id=task_id, project_id=project_id, venue_id=venue, title="Floor plan",
            status="TODO", assignee_id=staff.user_id, position=0,
        )  # fmt: skip
        await self.publish(event, task_id)
        return task_id

    async def unassign(self, venue: str, project_id: str, task_id: str, staff: Principal) -> None:
        event = TaskDeleted(
            task_id=task_id, project_id=project_id, venue_id=venue, title="Floor plan",
            status="TODO", assignee_id=staff.user_id, position=0,
        )  # fmt: skip
        await self.publish(event, task_id)

    def client_of(self, venue: str) -> Principal:
        return self.member(venue, Role.CLIENT)


@pytest.fixture(scope="module")
async def chat(infra: Settings) -> AsyncIterator[Chat]:
    async with (
        own_database(service, infra) as settings,
        running_service(service, settings, ProcessRole.ALL, Chat) as running,
    ):
        yield running
