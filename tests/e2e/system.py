"""The whole system as processes, for tests that go through the gateway only.

Contacts, pipeline, projects, chat, billing and the gateway (auth dev mode) run as
``python -m`` processes on the real broker and store, each service with a database and a
consumer group of its own (each group starts at the end of its topics, so another run's
events never reach it), with Stripe's API mock server standing in for Stripe. Nothing is
configured that would make a process talk to anything outside 127.0.0.1. Users log in as
a person would in development: ``gala users add`` / ``gala dev-token``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from billing.bootstrap import service as billing_service
from chat.bootstrap import service as chat_service
from contacts.bootstrap import service as contacts_service
from gala.app import ServiceDefinition
from gala.settings import Settings
from gala.store import Store
from gala.testing import (
    ServiceProcess,
    StripeMockMissing,
    free_port,
    gala_cli,
    start_groups_at_end,
    stripe_mock,
    unique_name,
)
from partners.bootstrap import service as partners_service
from pipeline.bootstrap import service as pipeline_service
from projects.bootstrap import service as projects_service

SERVICES: tuple[ServiceDefinition, ...] = (
    contacts_service,
    pipeline_service,
    projects_service,
    chat_service,
    billing_service,
    partners_service,
)
# Anything that would make a process talk to something outside 127.0.0.1.
OUTSIDE = (
    "GALA_AUTH_JWKS_URL",
    "GALA_AUTH_ISSUER",
    "GALA_STRIPE_API_KEY",
    "GALA_STRIPE_WEBHOOK_SECRET",
    "GALA_STRIPE_API_BASE",
    "GALA_SMTP_HOST",
    "GALA_META_VERIFY_TOKEN",
    "GALA_META_APP_SECRET",
    "GALA_META_PAGE_ACCESS_TOKEN",
    "GALA_META_GRAPH_URL",
    "GALA_BLOB_STORE",
    "GALA_S3_ENDPOINT_URL",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
)
STRIPE_MOCK_SECRET_KEY = "sk_test_galaE2e"  # stripe-mock wants a valid-looking key
STRIPE_WEBHOOK_SECRET = "whsec_gala_e2e_secret"
REPO = Path(__file__).resolve().parents[2]


@dataclass
class System:
    gateway: str
    env: dict[str, str]
    """The environment the processes run with (``gala`` commands need it too)."""
    processes: dict[str, ServiceProcess]
    logs: Path

    async def add_user(
        self, venue: str, role: str, *, name: str | None = None
    ) -> tuple[str, str, str]:
        """A new user of ``venue`` with ``role``: (their id, e-mail address, session token)."""
        email = f"{unique_name(role.lower() + '-')}@example.com"
        created = await gala_cli(
            self.env, "users", "add", "--venue", venue, "--email", email, "--role", role,
            "--subject", unique_name("user_"), "--name", name or role.title(),
        )  # fmt: skip
        user_id = created.split('"id": "', 1)[1].split('"', 1)[0]
        token = await gala_cli(self.env, "dev-token", "--email", email)
        return user_id, email, token


@contextlib.asynccontextmanager
async def whole_system(
    infra: Settings,
    logs: Path,
    *,
    extra_env: dict[str, str] | None = None,
    services: Sequence[ServiceDefinition] = SERVICES,
) -> AsyncIterator[System]:
    """``services`` (every one by default) and the gateway as processes; stopped, and
    their databases dropped, on leaving."""
    async with contextlib.AsyncExitStack() as stack:
        try:
            stripe = await stack.enter_async_context(stripe_mock())
        except StripeMockMissing as missing:
            pytest.fail(str(missing), pytrace=False)
        ports = {s.name: free_port() for s in services} | {"gateway": free_port()}
        inherited = {k: v for k, v in os.environ.items() if k not in OUTSIDE}
        env = {
            **inherited,
            "GALA_DEV_MODE": "true",
            "GALA_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
            "GALA_MONGO_URL": infra.mongo_url,
            "GALA_CONSUMER_START_FROM": "earliest",
            "GALA_AUTH_DEV_MODE": "true",
            "GALA_AUTH_DEV_KEY_DIR": str(logs / "dev-auth"),
            "GALA_BLOB_DIR": str(logs / "blobs"),
            "GALA_STRIPE_API_KEY": STRIPE_MOCK_SECRET_KEY,
            "GALA_STRIPE_API_BASE": stripe,
            "GALA_STRIPE_WEBHOOK_SECRET": STRIPE_WEBHOOK_SECRET,
            # Graph calls (Meta pages) go to a closed local port: answered 503, never sent out
            "GALA_META_GRAPH_URL": f"http://127.0.0.1:{free_port()}/v19.0",
            **{f"GALA_{name.upper()}_PORT": str(port) for name, port in ports.items()},
            **{f"GALA_{name.upper()}_URL": f"http://127.0.0.1:{p}" for name, p in ports.items()},
            # the pipeline asks contacts about a contact its copy lacks (none: a closed port)
            "GALA_PIPELINE_CONTACTS_URL": f"http://127.0.0.1:{ports.get('contacts', free_port())}",
            **(extra_env or {}),
        }  # fmt: skip
        databases = {s.name: unique_name(f"gala_e2e_{s.name}_") for s in services}
        groups = {s.name: unique_name(f"gala.{s.name}.e2e-") for s in services}
        await asyncio.gather(
            *(
                start_groups_at_end(
                    infra.kafka_bootstrap,
                    groups[s.name],
                    s.subscriptions.topics,
                    partitions=infra.topic_partitions,
                    replication_factor=infra.topic_replication_factor,
                )
                for s in services
            )
        )
        processes = {
            s.name: ServiceProcess(
                s.name,
                {
                    **env,
                    "GALA_MONGO_DATABASE": databases[s.name],
                    "GALA_CONSUMER_GROUP": groups[s.name],
                },
                ports[s.name],
                log_file=logs / f"{s.name}.log",
                ready_timeout=120,
            )
            for s in services
        }
        processes["gateway"] = ServiceProcess(
            "gateway", env, ports["gateway"], log_file=logs / "gateway.log", ready_timeout=120
        )
        try:
            async with asyncio.TaskGroup() as starting:
                for process in processes.values():
                    starting.create_task(process.start())
            yield System(processes["gateway"].url, env, processes, logs)
        finally:
            await asyncio.gather(*(p.stop() for p in processes.values()), return_exceptions=True)
            store = Store(infra.mongo_url, "admin")
            try:
                for database in databases.values():
                    await store.client.drop_database(database)
            finally:
                await store.close()
