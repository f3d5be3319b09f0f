"""Topic naming and explicit topic creation (never by broker auto-creation)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

log = logging.getLogger(__name__)

_TOPIC_ALREADY_EXISTS = TopicAlreadyExistsError.errno


def stream_topic(service: str, aggregate: str) -> str:
    """An aggregate's stream: ``gala.<service>.<aggregate>``."""
    return f"gala.{service}.{aggregate}"


def dead_letter_topic(service: str) -> str:
    """Where a service's consumer parks the messages it could not handle."""
    return f"gala.{service}.dlq"


def redrive_topic(service: str) -> str:
    """Where ``gala ops`` puts redriven dead letters and replayed events for one of the
    service's consumer groups: only that service's consumer reads it."""
    return f"gala.{service}.redrive"


def consumer_group(service: str) -> str:
    """One consumer group per service: its replicas share the partitions."""
    return f"gala.{service}"


class TopicCreationFailed(RuntimeError):
    pass


async def ensure_topics(
    bootstrap: str, names: Iterable[str], *, partitions: int, replication_factor: int
) -> list[str]:
    """Create the topics that do not exist yet; answers the names it created."""
    wanted = sorted(set(names))
    if not wanted:
        return []
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="gala-topics")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in wanted if name not in existing]
        if not missing:
            return []
        response = await admin.create_topics(
            [NewTopic(name, partitions, replication_factor) for name in missing]
        )
        created = []
        for topic_error in response.topic_errors:
            name, code = topic_error[0], topic_error[1]
            if code == 0:
                created.append(name)
            elif code != _TOPIC_ALREADY_EXISTS:  # another replica won the race: fine
                message = topic_error[2] if len(topic_error) > 2 else ""
                raise TopicCreationFailed(f"creating {name} failed with error {code}: {message}")
        if created:
            log.info("created topics", extra={"topics": created, "partitions": partitions})
        return created
    finally:
        await admin.close()


async def partition_count(bootstrap: str, topic: str) -> int:
    """How many partitions ``topic`` has (0 when it does not exist)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="gala-topics")
    await admin.start()
    try:
        (description,) = await admin.describe_topics([topic])
        return len(description["partitions"]) if description["error_code"] == 0 else 0
    finally:
        await admin.close()


@dataclass(frozen=True)
class PartitionOffsets:
    committed: int | None
    """The group's committed offset (``None``: nothing committed yet)."""
    end: int
    lag: int
    """``end`` minus ``committed`` (minus the partition's beginning when nothing is)."""


class LagReader:
    """A consumer group's lag per partition of its topics: each partition's end offset
    minus the group's committed offset (the whole partition when nothing is committed
    yet). One admin client and one offset-reading consumer, kept open between reads."""

    def __init__(self, bootstrap: str, group: str, topics: Iterable[str]) -> None:
        self.group = group
        self.topics = sorted(topics)
        self._admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="gala-lag")
        self._offsets = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, client_id="gala-lag", enable_auto_commit=False
        )
        self._started = False

    async def read(self) -> dict[tuple[str, int], int]:
        return {key: offsets.lag for key, offsets in (await self.offsets()).items()}

    async def offsets(self) -> dict[tuple[str, int], PartitionOffsets]:
        """Per partition: the group's committed offset, the end offset and the lag."""
        if not self._started:
            await self._admin.start()
            await self._offsets.start()
            self._started = True
        partitions = [
            TopicPartition(description["topic"], part["partition"])
            for description in await self._admin.describe_topics(self.topics)
            if description["error_code"] == 0
            for part in description["partitions"]
        ]
        if not partitions:
            return {}
        ends = await self._offsets.end_offsets(partitions)
        beginnings = await self._offsets.beginning_offsets(partitions)
        committed = await self._admin.list_consumer_group_offsets(self.group)
        found = {}
        for tp in sorted(partitions):
            done = committed.get(tp)
            offset = done.offset if done is not None and done.offset >= 0 else None
            start = offset if offset is not None else beginnings[tp]
            found[(tp.topic, tp.partition)] = PartitionOffsets(
                offset, ends[tp], max(0, ends[tp] - start)
            )
        return found

    async def close(self) -> None:
        if self._started:
            await self._offsets.stop()
            await self._admin.close()
            self._started = False
