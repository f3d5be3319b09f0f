"""The partners service on the real broker and store, served in-process.

One app per test module (its own database and consumer group, starting at the end of
every topic); each test works in venues of its own, so tests never see each other's
records.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from gala.app import ProcessRole
from gala.settings import Settings
from gala.testing import ServiceUnderTest, own_database, running_service
from partners.bootstrap import service
from partners.settings import PartnersSettings


class Partners(ServiceUnderTest):
    """The partners service under test."""


@asynccontextmanager
async def running(
    infra: Settings, role: ProcessRole = ProcessRole.ALL, **overrides: Any
) -> AsyncIterator[Partners]:
    """The service on a database and consumer group of its own (``overrides``: its
    settings, e.g. a short grace period)."""
    async with own_database(service, infra) as settings:
        own = PartnersSettings(**{**settings.model_dump(), **overrides})
        async with running_service(service, own, role, Partners) as partners:
            yield partners


@pytest.fixture(scope="module")
async def partners(infra: Settings) -> AsyncIterator[Partners]:
    """The service in the ``all`` role: its API and its event consumers."""
    async with running(infra) as running_partners:
        yield running_partners
