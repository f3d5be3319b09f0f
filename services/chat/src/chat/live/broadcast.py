"""Every API replica reads every message and signal from the bus, and hands them to
the sockets it serves (fan-out through the bus, no sticky sessions).

Messages: the ``gala.message.sent.v1`` events the outbox publishes once a message is
stored (the socket side reads the message itself from the store). Signals: typing
indicators and read markers, published straight to ``gala.chat.signal`` (ephemeral,
never stored). Each replica reads both topics from their end without a consumer group,
so it receives everything published while it runs.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import Any, Final
from weakref import WeakKeyDictionary

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from chat.live.hub import Frame, LiveHub
from chat.messages.repository import MessageRepository
from chat.messages.schemas import MessageOut
from chat.settings import chat_settings
from gala.app import Runtime
from gala.contracts.chat import MESSAGE_TOPIC, MessageSent
from gala.events.envelope import Envelope, MalformedEnvelope
from gala.events.topics import ensure_topics, partition_count

log = logging.getLogger(__name__)
SIGNAL_TOPIC: Final = "gala.chat.signal"
_HUBS: WeakKeyDictionary[Runtime, LiveHub] = WeakKeyDictionary()
_PRODUCERS: WeakKeyDictionary[Runtime, AIOKafkaProducer] = WeakKeyDictionary()


def message_frame(message: MessageOut) -> Frame:
    """A message as sockets receive it, its JSON text made once for all of them."""
    body = message.model_dump(mode="json")
    frame: Frame = {"type": "message", "message": body}
    return {**frame, "text": json.dumps(frame)}


def hub_of(runtime: Runtime) -> LiveHub:
    """This process's hub (one per running service)."""
    hub = _HUBS.get(runtime)
    if hub is None:
        hub = _HUBS[runtime] = LiveHub(chat_settings(runtime.settings).socket_queue_size)
    return hub


async def send_signal(runtime: Runtime, project_id: str, signal: Mapping[str, Any]) -> None:
    """An ephemeral signal to every replica's sockets of the project (never stored)."""
    producer = _PRODUCERS.get(runtime)
    if producer is None:
        return  # the broadcast loop is not running here (not an API replica)
    body = json.dumps({"projectId": project_id, **signal}).encode()
    await producer.send(SIGNAL_TOPIC, body, key=project_id.encode())


async def broadcast(runtime: Runtime) -> None:
    """The API role's loop: read both topics from their end, feed this process's hub."""
    hub = hub_of(runtime)
    settings = runtime.settings
    bootstrap = settings.kafka_bootstrap
    await ensure_topics(
        bootstrap,
        [SIGNAL_TOPIC],
        partitions=settings.topic_partitions,
        replication_factor=settings.topic_replication_factor,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await producer.start()
    await consumer.start()
    _PRODUCERS[runtime] = producer
    try:
        partitions = [
            TopicPartition(topic, n)
            for topic in (MESSAGE_TOPIC, SIGNAL_TOPIC)
            for n in range(await partition_count(bootstrap, topic))
        ]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for partition in partitions:
            await consumer.position(partition)  # known now: nothing after this is missed
        hub.ready.set()
        messages = MessageRepository(runtime.store, runtime.outbox)
        while True:
            batches = await consumer.getmany(timeout_ms=500)
            for partition, records in batches.items():
                for record in records:
                    try:
                        await _dispatch(
                            hub, messages, partition.topic, record.headers, record.value
                        )
                    except Exception:
                        log.exception("chat broadcast: a record could not be handed out")
    finally:
        hub.ready.clear()
        _PRODUCERS.pop(runtime, None)
        await asyncio.gather(consumer.stop(), producer.stop(), return_exceptions=True)


async def _dispatch(
    hub: LiveHub, messages: MessageRepository, topic: str, headers: Any, value: bytes | None
) -> None:
    if topic == SIGNAL_TOPIC:
        if value is None:
            return
        signal = json.loads(value)
        project_id = str(signal.pop("projectId", ""))
        if hub.watches(project_id):
            hub.deliver(project_id, signal)
        return
    try:
        envelope = Envelope.from_kafka(headers, value)
    except MalformedEnvelope:
        return
    if envelope.type != MessageSent.TYPE:
        return
    event = MessageSent.model_validate_json(envelope.data)
    if not hub.watches(event.project_id):
        return
    message = await messages.find_one({"_id": event.message_id})  # once per replica
    if message is not None:
        hub.deliver(event.project_id, message_frame(MessageOut.of(message)))
