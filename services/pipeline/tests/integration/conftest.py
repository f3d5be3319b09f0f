"""The pipeline service on the real broker and store, served in-process.

One app per test module (its own database); each test works in venues of its own.
``pipeline`` serves the API; ``replica`` is a second instance on the same database (two
replicas); ``pipeline_worker`` also consumes events (the ``all`` role).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from gala.app import ProcessRole, Runtime, create_app
from gala.contracts.pipeline import OPPORTUNITY_TOPIC
from gala.identity import Principal, Role
from gala.settings import Settings
from gala.testing import (
    TopicTail,
    identity_headers,
    isolated,
    serving,
    unique_name,
    wait_until_assigned,
)
from pipeline.bootstrap import service
from pipeline.contacts.repository import ContactCopyRepository


@dataclass
class Pipeline:
    """A running pipeline service and ways to call it as anyone."""

    app: FastAPI
    client: httpx.AsyncClient

    @property
    def runtime(self) -> Runtime:
        return self.app.state.runtime

    def headers(self, principal: Principal) -> dict[str, Any]:
        return identity_headers(self.runtime, principal)

    def new_venue(self) -> tuple[str, Principal]:
        venue = unique_name("venue-")
        return venue, self.member(venue, Role.ADMIN)

    @staticmethod
    def member(venue: str, role: Role) -> Principal:
        return Principal(user_id=unique_name("user-"), venue_id=venue, role=role)

    async def known_contact(self, venue: str, name: str = "Ada Lovelace") -> str:
        """A contact the projection knows (as if its created event had been consumed)."""
        contact_id = str(uuid.uuid4())
        await ContactCopyRepository(self.runtime.store).upsert(
            venue, contact_id, name, datetime.now(UTC)
        )
        return contact_id

    async def call(
        self, method: str, path: str, principal: Principal, body: Any = None, **params: Any
    ) -> httpx.Response:
        return await self.client.request(
            method, path, json=body, params=params or None, headers=self.headers(principal)
        )


@asynccontextmanager
async def running(settings: Settings, role: ProcessRole) -> AsyncIterator[Pipeline]:
    app = create_app(service, role, settings)
    async with serving(app) as client:
        if role.consumes:
            await wait_until_assigned(app.state.runtime)
        yield Pipeline(app, client)


@asynccontextmanager
async def own_database(infra: Settings) -> AsyncIterator[Settings]:
    settings = isolated(infra, service.name)
    try:
        yield settings
    finally:
        store = Runtime(service, settings, ProcessRole.API).store
        await store.client.drop_database(settings.database_name(service.name))
        await store.close()


@pytest.fixture(scope="module")
async def pipeline_settings(infra: Settings) -> AsyncIterator[Settings]:
    async with own_database(infra) as settings:
        yield settings


@pytest.fixture(scope="module")
async def pipeline(pipeline_settings: Settings) -> AsyncIterator[Pipeline]:
    async with running(pipeline_settings, ProcessRole.API) as running_pipeline:
        yield running_pipeline


@pytest.fixture(scope="module")
async def replica(pipeline: Pipeline, pipeline_settings: Settings) -> AsyncIterator[Pipeline]:
    """A second instance of the service on the same database."""
    async with running(pipeline_settings, ProcessRole.API) as running_pipeline:
        yield running_pipeline


@pytest.fixture(scope="module")
async def pipeline_worker(infra: Settings) -> AsyncIterator[Pipeline]:
    async with own_database(infra) as settings, running(settings, ProcessRole.ALL) as worker:
        yield worker


@pytest.fixture
async def opportunity_events(pipeline: Pipeline, infra: Settings) -> AsyncIterator[TopicTail]:
    tail = TopicTail(infra.kafka_bootstrap, OPPORTUNITY_TOPIC)
    await tail.start()
    try:
        yield tail
    finally:
        await tail.stop()
