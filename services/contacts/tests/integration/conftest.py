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

import httpx
import pytest

from contacts.bootstrap import service
from contacts.settings import ContactsSettings
from gala.app import ProcessRole
from gala.contracts.contacts import USER_TOPIC
from gala.identity import Principal, Role
from gala.settings import Settings
from gala.testing import (
    ServiceUnderTest,
    TopicTail,
    eventually,
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

    # --- CSV imports (jobs) ---------------------------------------------------------------

    async def upload_csv(
        self,
        principal: Principal,
        data: str | bytes,
        *,
        content_type: str = "text/csv",
        chunk: int = 7,
    ) -> httpx.Response:
        """POST ``data`` to the import as a streamed body, cut in small chunks (they may
        split characters)."""
        body = data.encode() if isinstance(data, str) else data

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(body), chunk):
                yield body[start : start + chunk]

        return await self.client.post(
            IMPORT,
            content=chunks(),
            headers={**self.headers(principal), "content-type": content_type},
        )

    async def import_job(self, principal: Principal, job_id: str) -> dict[str, Any]:
        response = await self.client.get(f"{IMPORTS}/{job_id}", headers=self.headers(principal))
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        return job

    async def finished_job(
        self, principal: Principal, job_id: str, timeout: float = 60.0
    ) -> dict[str, Any]:
        """The job once it ended (succeeded or failed)."""

        async def ended() -> dict[str, Any] | None:
            job = await self.import_job(principal, job_id)
            return job if job["state"] in ("succeeded", "failed") else None

        job: dict[str, Any] = await eventually(ended, timeout=timeout, interval=0.05)
        return job

    async def imported(self, principal: Principal, data: str | bytes, **kw: Any) -> dict[str, Any]:
        """Upload ``data`` (202 and a queued job) and answer the job once it succeeded."""
        response = await self.upload_csv(principal, data, **kw)
        assert response.status_code == 202, response.text
        queued = response.json()
        assert queued["state"] == "queued"
        assert response.headers["location"] == f"{IMPORTS}/{queued['id']}"
        job = await self.finished_job(principal, queued["id"])
        assert job["state"] == "succeeded", job
        assert job["percentDone"] == 100
        return job


IMPORT = "/api/v1/contacts/import"
IMPORTS = "/api/v1/contacts/imports"
QUICK_IMPORTS = {"import_poll_interval_seconds": 0.05, "import_batch_pause_seconds": 0.0}
"""Import jobs start at once (tests do not wait for the worker's next poll)."""


@asynccontextmanager
async def running(infra: Settings, role: ProcessRole, **overrides: Any) -> AsyncIterator[Contacts]:
    """The service on a database and consumer group of its own (``overrides``: of its
    settings, e.g. ``import_batch_rows``)."""
    async with own_database(service, infra) as isolated:
        settings = ContactsSettings(**{**dict(isolated), **QUICK_IMPORTS, **overrides})
        async with running_service(service, settings, role, Contacts) as contacts:
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


IMPORT_BATCH_ROWS = 50


@pytest.fixture(scope="module")
async def slow_imports(infra: Settings) -> AsyncIterator[Contacts]:
    """API and worker in one process; import jobs of 50-row batches with a pause of
    0.2 s between them, so a test sees them midway."""
    async with running(
        infra,
        ProcessRole.ALL,
        import_batch_rows=IMPORT_BATCH_ROWS,
        import_batch_pause_seconds=0.2,
    ) as running_contacts:
        yield running_contacts


@pytest.fixture
async def user_events(contacts: Contacts, infra: Settings) -> AsyncIterator[TopicTail]:
    tail = TopicTail(infra.kafka_bootstrap, USER_TOPIC)
    await tail.start()
    try:
        yield tail
    finally:
        await tail.stop()
