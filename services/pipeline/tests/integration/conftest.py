"""The pipeline service on the real broker and store, served in-process.

One app per test module (its own database); each test works in venues of its own.
``pipeline`` serves the API; ``replica`` is a second instance on the same database (two
replicas); ``pipeline_worker`` also consumes events (the ``all`` role).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime

import pytest

from gala.app import ProcessRole
from gala.contracts.pipeline import OPPORTUNITY_TOPIC
from gala.settings import Settings
from gala.testing import (
    ServiceUnderTest,
    TopicTail,
    own_database,
    running_service,
)
from pipeline.bootstrap import service
from pipeline.contacts.repository import ContactCopyRepository


class Pipeline(ServiceUnderTest):
    """The pipeline service under test."""

    async def known_contact(self, venue: str, name: str = "Ada Lovelace") -> str:
        """A contact the projection knows (as if its created event had been consumed)."""
        contact_id = str(uuid.uuid4())
        await ContactCopyRepository(self.runtime.store).upsert(
            venue, contact_id, name, datetime.now(UTC)
        )
        return contact_id


def running(settings: Settings, role: ProcessRole) -> AbstractAsyncContextManager[Pipeline]:
    return running_service(service, settings, role, Pipeline)


@pytest.fixture(scope="module")
async def pipeline_settings(infra: Settings) -> AsyncIterator[Settings]:
    async with own_database(service, infra) as settings:
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
    async with (
        own_database(service, infra) as settings,
        running(settings, ProcessRole.ALL) as worker,
    ):
        yield worker


@pytest.fixture
async def opportunity_events(pipeline: Pipeline, infra: Settings) -> AsyncIterator[TopicTail]:
    tail = TopicTail(infra.kafka_bootstrap, OPPORTUNITY_TOPIC)
    await tail.start()
    try:
        yield tail
    finally:
        await tail.stop()
