"""Every API replica reads every message and signal from the bus, and hands them to
the sockets it serves (fan-out through the bus, no sticky sessions).

Messages: the ``gala.message.sent.v1`` events the outbox publishes once a message is
stored (the socket side reads the message itself from the store). Signals: typing
indicators and read markers, published straight to ``gala.chat.signal`` (ephemeral,
never stored), and membership signals: a worker that changed chat's copy of a project
or a user tells every replica to re-judge its open sockets of them (membership.py).
Each replica reads both topics from their end without a consumer group, so it receives
everything published while it runs.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import Any, Final
from weakref import WeakKeyDictionary

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from chat.conversations.repository import ConversationRepository, UserCopyRepository
from chat.conversations.service import Membership
from chat.live.hub import Frame, LiveHub
from chat.live.membership import MembershipWatch
from chat.messages.repository import MessageRepository
from chat.messages.schemas import MessageOut
from chat.settings import chat_settings
from gala.app import Runtime
from gala.contracts.chat import MESSAGE_TOPIC, MessageSent
from gala.events.bus import EnvelopePublisher
from gala.events.envelope import Envelope, MalformedEnvelope
from gala.events.topics import ensure_topics, partition_count
from gala.store import Store

log = logging.getLogger(__name__)
SIGNAL_TOPIC: Final = "gala.chat.signal"
MEMBERSHIP: Final = "membership"
"""The type of the signal that makes every replica re-judge sockets (never sent to one)."""
SIGNALLER_WAIT_SECONDS: Final = 10.0
_HUBS: WeakKeyDictionary[Runtime, LiveHub] = WeakKeyDictionary()
_PRODUCERS: WeakKeyDictionary[Runtime, AIOKafkaProducer] = WeakKeyDictionary()
_SIGNALLERS: WeakKeyDictionary[Store, EnvelopePublisher] = WeakKeyDictionary()


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


async def signals_out(runtime: Runtime) -> None:
    """The worker role's loop: lets its event handlers publish membership signals (through
    the service's acknowledged publisher) for as long as it runs."""
    await ensure_topics(
        runtime.settings.kafka_bootstrap,
        [SIGNAL_TOPIC],
        partitions=runtime.settings.topic_partitions,
        replication_factor=runtime.settings.topic_replication_factor,
    )
    _SIGNALLERS[runtime.store] = runtime.publisher
    try:
        await asyncio.Event().wait()
    finally:
        _SIGNALLERS.pop(runtime.store, None)


async def membership_changed(
    store: Store, venue_id: str, *, project_id: str | None = None, user_id: str | None = None
) -> None:
    """(In an event handler, after chat's copy changed.) Every API replica re-judges its
    open sockets of the project or of the user. Returns once the broker has the signal;
    raises if it cannot be published, so that the handler is tried again."""
    publisher = _SIGNALLERS.get(store)
    deadline = asyncio.get_running_loop().time() + SIGNALLER_WAIT_SECONDS
    while publisher is None:  # the handler may run before the loop has started
        if asyncio.get_running_loop().time() > deadline:
            raise RuntimeError("membership signals cannot be published (no worker loop)")
        await asyncio.sleep(0.05)
        publisher = _SIGNALLERS.get(store)
    signal: dict[str, str] = {"type": MEMBERSHIP, "venueId": venue_id}
    if project_id is not None:
        signal["projectId"] = project_id
    if user_id is not None:
        signal["userId"] = user_id
    key = (project_id or user_id or venue_id).encode()
    await publisher.publish_raw(SIGNAL_TOPIC, key, json.dumps(signal).encode(), [])


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
    watching: asyncio.Task[None] | None = None
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
        membership = Membership(
            ConversationRepository(runtime.store), UserCopyRepository(runtime.store)
        )
        watch = MembershipWatch(
            hub, membership, chat_settings(runtime.settings).socket_recheck_seconds
        )
        watching = asyncio.create_task(watch.run(), name="chat-membership-watch")
        hub.ready.set()
        messages = MessageRepository(runtime.store, runtime.outbox)
        while True:
            batches = await consumer.getmany(timeout_ms=500)
            for partition, records in batches.items():
                for record in records:
                    try:
                        await _dispatch(
                            hub, watch, messages, partition.topic, record.headers, record.value
                        )
                    except Exception:
                        log.exception("chat broadcast: a record could not be handed out")
    finally:
        hub.ready.clear()
        _PRODUCERS.pop(runtime, None)
        if watching is not None:
            watching.cancel()
        await asyncio.gather(
            consumer.stop(),
            producer.stop(),
            *([watching] if watching is not None else []),
            return_exceptions=True,
        )


async def _dispatch(
    hub: LiveHub,
    watch: MembershipWatch,
    messages: MessageRepository,
    topic: str,
    headers: Any,
    value: bytes | None,
) -> None:
    if topic == SIGNAL_TOPIC:
        if value is None:
            return
        signal = json.loads(value)
        if signal.get("type") == MEMBERSHIP:
            if signal.get("projectId"):
                watch.project_changed(str(signal["projectId"]))
            if signal.get("userId") and signal.get("venueId"):
                watch.user_changed(str(signal["venueId"]), str(signal["userId"]))
            return
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
