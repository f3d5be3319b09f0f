"""The contacts service on the real broker and store, served in-process.

One app per test module (its own database); each test works in venues of its own, so
tests never see each other's users. ``user_events`` reads ``gala.contacts.user`` from
where it ended when the test began: the topic is shared by every run and test.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from contacts.bootstrap import service
from gala.app import ProcessRole, Runtime, create_app
from gala.contracts.contacts import USER_TOPIC
from gala.identity import IDENTITY_HEADER, Principal, Role
from gala.settings import Settings
from gala.testing import (
    TopicTail,
    identity_headers,
    isolated,
    serving,
    unique_name,
    wait_until_assigned,
)


@dataclass
class Contacts:
    """A running contacts service and ways to call it as anyone."""

    app: FastAPI
    client: httpx.AsyncClient

    @property
    def runtime(self) -> Runtime:
        return self.app.state.runtime

    def headers(self, principal: Principal) -> dict[str, Any]:
        return identity_headers(self.runtime, principal)

    def service_headers(self, name: str = "gateway") -> dict[str, Any]:
        return {IDENTITY_HEADER: self.runtime.tokens.issue_for_service(name)}

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
    """The service on a database of its own, dropped afterwards."""
    settings = isolated(infra, service.name)
    app = create_app(service, role, settings)
    async with serving(app) as client:
        if role.consumes:
            await wait_until_assigned(app.state.runtime)
        yield Contacts(app, client)
    store = Runtime(service, settings, ProcessRole.API).store
    await store.client.drop_database(settings.database_name(service.name))
    await store.close()


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
