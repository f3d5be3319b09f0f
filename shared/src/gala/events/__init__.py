"""The event kernel: CloudEvents over Kafka, outbox and relay, idempotent consumer."""

from gala.events.consumer import EventContext, PermanentError, RetryPolicy, Subscriptions
from gala.events.envelope import Envelope, MalformedEnvelope
from gala.events.model import Event, registry
from gala.events.outbox import Outbox, OutboxRelay
from gala.events.topics import consumer_group, dead_letter_topic, stream_topic

__all__ = [
    "Envelope",
    "Event",
    "EventContext",
    "MalformedEnvelope",
    "Outbox",
    "OutboxRelay",
    "PermanentError",
    "RetryPolicy",
    "Subscriptions",
    "consumer_group",
    "dead_letter_topic",
    "registry",
    "stream_topic",
]
