"""Fixtures every package's tests share.

Integration tests run on the real Kafka broker and MongoDB-wire store that
``make test`` starts (``deploy/local/infra.py``), found through ``GALA_KAFKA_BOOTSTRAP``
and ``GALA_MONGO_URL``. If they are not reachable the tests fail, never skip.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

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
    """Settings pointing at the live local infrastructure."""
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
