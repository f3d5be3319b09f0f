"""The Kafka connection: a FastStream broker whose producer never loses a write."""

from __future__ import annotations

import logging

from faststream.kafka import KafkaBroker

from gala.events.envelope import Envelope


def make_broker(bootstrap: str, service: str, *, grace_seconds: float = 10.0) -> KafkaBroker:
    """A broker whose producer waits for all in-sync replicas and is idempotent.

    aiokafka's defaults (``acks=1``, no idempotence) can lose or duplicate writes.
    """
    return KafkaBroker(
        bootstrap,
        client_id=f"gala-{service}",
        acks="all",
        enable_idempotence=True,
        graceful_timeout=grace_seconds,
        logger=logging.getLogger(f"gala.bus.{service}"),
        log_level=logging.DEBUG,
    )


class EnvelopePublisher:
    """Publishes CloudEvents envelopes and waits for the broker's acknowledgement."""

    def __init__(self, broker: KafkaBroker) -> None:
        self._broker = broker

    async def publish(self, topic: str, envelope: Envelope) -> None:
        await self.publish_raw(topic, envelope.key, envelope.data, envelope.headers())

    async def publish_raw(
        self, topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]
    ) -> None:
        await self._broker.publish(
            value,
            topic=topic,
            key=key,
            headers={name: raw.decode("utf-8", "replace") for name, raw in headers},
        )
