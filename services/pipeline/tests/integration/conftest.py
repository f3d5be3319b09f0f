"""The pipeline service on the real broker and store, served in-process.

One app per test module (its own database); each test works in venues of its own.
``pipeline`` serves the API; ``replica`` is a second instance on the same database (two
replicas); ``pipeline_worker`` also consumes events (the ``all`` role). Each asks a real
contacts service (``contacts_url``: the API role on a real port, a database of its own)
about contacts its copy lacks, as it does in production.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime

import pytest

from contacts.bootstrap import service as contacts_service
from gala.app import ProcessRole, create_app
from gala.contracts.pipeline import OPPORTUNITY_TOPIC
from gala.settings import Settings
from gala.testing import (
    ServiceUnderTest,
    TopicTail,
    http_server,
    own_database,
    running_service,
)
from pipeline.bootstrap import service
from pipeline.contacts.repository import ContactCopyRepository
from pipeline.settings import PipelineSettings


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


@pytest.fixture(scope="session")
async def contacts_url(infra: Settings) -> AsyncIterator[str]:
    """The contacts service (API role) on a real port, on a database of its own: what
    the pipeline asks when its copy lacks a contact."""
    async with own_database(contacts_service, infra) as settings:
        app = create_app(contacts_service, ProcessRole.API, settings)
        async with http_server(app) as url:
            yield url


def asking(settings: Settings, contacts_url: str) -> PipelineSettings:
    """``settings`` for a pipeline that asks the contacts service at ``contacts_url``."""
    return PipelineSettings(**{**dict(settings), "pipeline_contacts_url": contacts_url})


@pytest.fixture(scope="module")
async def pipeline_settings(infra: Settings, contacts_url: str) -> AsyncIterator[Settings]:
    async with own_database(service, infra) as settings:
        yield asking(settings, contacts_url)


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
async def pipeline_worker(infra: Settings, contacts_url: str) -> AsyncIterator[Pipeline]:
    async with (
        own_database(service, infra) as settings,
        running(asking(settings, contacts_url), ProcessRole.ALL) as worker,
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
