"""The projects service on the real broker and store, served in-process.

``projects`` consumes events and serves the API (the ``all`` role), on a database and
consumer group of its own; each test works in venues of its own. Other services are
not running: tests publish the events they would (a won opportunity, a user, a
contact) and read what this service publishes.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from gala.app import ProcessRole
from gala.contracts.contacts import ContactCreated, UserCreated
from gala.contracts.pipeline import OpportunityWon
from gala.contracts.projects import PROJECT_TOPIC, TASK_TOPIC
from gala.identity import Principal, Role
from gala.settings import Settings
from gala.testing import (
    ServiceUnderTest,
    TopicTail,
    eventually,
    own_database,
    running_service,
)
from projects.bootstrap import service
from projects.projects.domain import project_id_for

EVENT_DATE = datetime(2027, 6, 12, 15, 0, tzinfo=UTC)


class Projects(ServiceUnderTest):
    """The projects service under test."""

    def won_event(self, venue: str, **fields: Any) -> OpportunityWon:
        values: dict[str, Any] = {
            "opportunity_id": str(uuid.uuid4()),
            "venue_id": venue,
            "contact_id": str(uuid.uuid4()),
            "name": "Smith wedding",
            "stage": "contract sent",
            "value": Decimal("12000.00"),
            "currency": "EUR",
            "event_type": "WEDDING",
            "event_date": EVENT_DATE,
            "guest_count": 120,
            "won_at": datetime.now(UTC),
        }
        return OpportunityWon(**{**values, **fields})

    async def win(self, venue: str, **fields: Any) -> dict[str, Any]:
        """Publish a won opportunity and answer its project once it exists."""
        event = self.won_event(venue, **fields)
        await self.publish(event, event.opportunity_id)
        return await self.project_of(venue, event.opportunity_id)

    async def project_of(self, venue: str, opportunity_id: str) -> dict[str, Any]:
        admin = self.member(venue, Role.ADMIN)
        path = f"/api/v1/projects/{project_id_for(opportunity_id)}"

        async def made() -> dict[str, Any] | None:
            response = await self.call("GET", path, admin)
            return response.json() if response.status_code == 200 else None

        project: dict[str, Any] = await eventually(made)
        return project

    async def user(
        self, venue: str, role: Role, email: str | None = None, active: bool = True
    ) -> Principal:
        """A user the projection knows (published as the contacts service would)."""
        user_id = str(uuid.uuid4())
        event = UserCreated(
            user_id=user_id,
            venue_id=venue,
            email=email or f"{user_id[:8]}@people.example",
            role=role,
            active=active,
        )
        await self.publish(event, user_id)
        await eventually(lambda: self._knows(USERS, user_id))
        return self.member(venue, role, user_id)

    async def contact(self, venue: str, email: str, contact_id: str | None = None) -> str:
        contact_id = contact_id or str(uuid.uuid4())
        event = ContactCreated(
            contact_id=contact_id,
            venue_id=venue,
            name="Bride Tobe",
            email=email,
            lead_source="WEBSITE",
            status="LEAD",
            lead_heat=10,
        )
        await self.publish(event, contact_id)
        await eventually(lambda: self._knows(CONTACTS, contact_id))
        return contact_id

    async def _knows(self, collection: str, doc_id: str) -> bool:
        return await self.runtime.store[collection].find_one({"_id": doc_id}) is not None


USERS, CONTACTS = "users", "contacts"


@pytest.fixture(scope="module")
async def projects_settings(infra: Settings) -> AsyncIterator[Settings]:
    async with own_database(service, infra) as settings:
        yield settings


@pytest.fixture(scope="module")
async def projects(projects_settings: Settings) -> AsyncIterator[Projects]:
    async with running_service(service, projects_settings, ProcessRole.ALL, Projects) as running:
        yield running


@pytest.fixture(scope="module")
async def replica(projects: Projects, projects_settings: Settings) -> AsyncIterator[Projects]:
    """A second instance of the API on the same database."""
    async with running_service(service, projects_settings, ProcessRole.API, Projects) as running:
        yield running


@pytest.fixture
async def project_events(projects: Projects, infra: Settings) -> AsyncIterator[TopicTail]:
    tail = TopicTail(infra.kafka_bootstrap, PROJECT_TOPIC)
    await tail.start()
    try:
        yield tail
    finally:
        await tail.stop()


@pytest.fixture
async def task_events(projects: Projects, infra: Settings) -> AsyncIterator[TopicTail]:
    tail = TopicTail(infra.kafka_bootstrap, TASK_TOPIC)
    await tail.start()
    try:
        yield tail
    finally:
        await tail.stop()
