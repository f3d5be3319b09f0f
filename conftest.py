"""Fixtures every package's tests share.

Integration tests run on the real Kafka broker and MongoDB-wire store that
``make test`` starts (``deploy/local/infra.py``), found through ``GALA_KAFKA_BOOTSTRAP``
and ``GALA_MONGO_URL``. If they are not reachable the tests fail, never skip.

Where a Docker engine exists, ``GALA_TEST_INFRA=testcontainers`` runs the same tests on
throwaway containers instead (MongoDB 7 and Kafka 3.9 in KRaft mode).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

# The tests run in the explicit dev mode: made-up secrets instead of refusing to start.
# Processes the tests start inherit it.
os.environ["GALA_DEV_MODE"] = "true"

# pytest's importlib mode names gateway/tests/... modules "gateway.tests...", and would
# otherwise make "gateway" a bare namespace for the gateway/ folder, hiding the real
# package (gateway/src/gateway). Importing it first keeps the real one.
import gateway  # noqa: F401
from gala.settings import Settings


def _reachable(host_port: str) -> bool:
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def infra() -> Iterator[Settings]:
    """Settings pointing at the live infrastructure."""
    if os.environ.get("GALA_TEST_INFRA") == "testcontainers":
        yield from _containers()
        return
    settings = Settings()
    mongo_host = settings.mongo_url.split("://", 1)[1].split("/", 1)[0].split(",")[0]
    missing = [
        name
        for name, address in (("Kafka", settings.kafka_bootstrap), ("store", mongo_host))
        if not _reachable(address)
    ]
    if missing:
        pytest.fail(
            f"{' and '.join(missing)} not reachable: run `make infra-up` or `make test`",
            pytrace=False,
        )
    yield settings


def _containers() -> Iterator[Settings]:
    """MongoDB and Kafka in throwaway containers (needs a Docker engine)."""
    from testcontainers.community.kafka import KafkaContainer
    from testcontainers.community.mongodb import MongoDbContainer

    kafka = (
        KafkaContainer("confluentinc/cp-kafka:7.9.1")  # Apache Kafka 3.9
        .with_kraft()
        .with_env("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false")
    )
    with MongoDbContainer("mongo:7") as mongo, kafka:
        settings = Settings(
            kafka_bootstrap=kafka.get_bootstrap_server(), mongo_url=mongo.get_connection_url()
        )
        # subprocesses started by tests (services, crash programs) inherit these
        os.environ["GALA_KAFKA_BOOTSTRAP"] = settings.kafka_bootstrap
        os.environ["GALA_MONGO_URL"] = settings.mongo_url
        yield settings
