"""The contacts service on the real broker and store, served in-process.

One app per test module (its own database); each test works in venues of its own, so
tests never see each other's users. ``user_events`` reads ``gala.contacts.user`` from
where it ended when the test began: the topic is shared by every run and test.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from contacts.bootstrap import service
from gala.app import ProcessRole
from gala.contracts.contacts import USER_TOPIC
from gala.identity import Principal, Role
from gala.settings import Settings
from gala.testing import (
    ServiceUnderTest,
    TopicTail,
    own_database,
    running_service,
    unique_name,
)


class Contacts(ServiceUnderTest):
    """The contacts service under test."""

    async def new_venue(self) -> tuple[str, Principal]:
        """A fresh venue and its first ADMIN (added the way the ops tool does)."""
        venue = unique_name("venue-")
        response = await self.client.post(
            "/internal/v1/users",
            json={
                "venueId": venue,
                "authSubject": unique_name("sub-admin-"),
                "email": f"admin@{venue}.example",
                "name": "First Admin",
                "role": "ADMIN",
            },
            headers=self.service_headers("ops"),
        )
        assert response.status_code == 201, response.text
        return venue, Principal(user_id=response.json()["id"], venue_id=venue, role=Role.ADMIN)

    async def add_user(
        self, admin: Principal, role: Role = Role.STAFF, **fields: Any
    ) -> tuple[dict[str, Any], Principal]:
        """A user added by ``admin``, and the principal it acts as."""
        tag = uuid.uuid4().hex[:8]
        body = {"authSubject": f"sub-{tag}", "email": f"{tag}@people.example", "role": role}
        response = await self.client.post(
            "/api/v1/users", json={**body, **fields}, headers=self.headers(admin)
        )
        assert response.status_code == 201, response.text
        user = response.json()
        return user, Principal(user_id=user["id"], venue_id=admin.venue_id, role=user["role"])


@asynccontextmanager
async def running(infra: Settings, role: ProcessRole) -> AsyncIterator[Contacts]:
    """The service on a database and consumer group of its own."""
    async with (
        own_database(service, infra) as settings,
        running_service(service, settings, role, Contacts) as contacts,
    ):
        yield contacts


@pytest.fixture(scope="module")
async def contacts(infra: Settings) -> AsyncIterator[Contacts]:
    async with running(infra, ProcessRole.API) as running_contacts:
        yield running_contacts


@pytest.fixture(scope="module")
async def contacts_worker(infra: Settings) -> AsyncIterator[Contacts]:
    """The service in the ``all`` role: its API and its event consumers."""
    async with running(infra, ProcessRole.ALL) as running_contacts:
        yield running_contacts


@pytest.fixture
async def user_events(contacts: Contacts, infra: Settings) -> AsyncIterator[TopicTail]:
    tail = TopicTail(infra.kafka_bootstrap, USER_TOPIC)
    await tail.start()
    try:
        yield tail
    finally:
        await tail.stop()
