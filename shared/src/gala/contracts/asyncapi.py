"""The AsyncAPI 3.0 document of Gala's events, generated from what the code runs on.

Its sources are the declarations the services run with, never a hand-kept list: the
event registry (types and payload classes, with their docstrings and examples), each
class's topic, each service's :class:`~gala.app.ServiceDefinition` (what it publishes,
what its subscriptions react to), the shared settings (partitions, replicas), the
CloudEvents envelope (headers) and the consumer groups (``gala.<service>``).

One channel per topic (address: the topic), one message per event type, one ``send``
operation per publishing service and topic and one ``receive`` operation per consuming
service and topic (with its Kafka consumer group).
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gala.contracts.schemas import EXAMPLE_TIME, example, json_schema, own_docstring, summary
from gala.events.envelope import EXTENSIONS, JSON, SPEC_VERSION
from gala.events.model import Event
from gala.events.topics import consumer_group

ASYNCAPI_VERSION = "3.0.0"
KAFKA_BINDING_VERSION = "0.5.0"
CONTRACT_VERSION = "1.0.0"
SERVER = "kafka"
_EXAMPLE_IDS = uuid.UUID("0b8e6f7c-2d4a-4f1e-8c3b-9a5d7e6f1c20")

PROMISE = """\
Every event Gala publishes, on its Kafka topics (one per aggregate stream) and to partner
webhooks. Each message is a [CloudEvents 1.0](https://github.com/cloudevents/spec) event in
Kafka *binary mode*: its attributes travel as `ce_*` headers, `content-type` is the data's
content type and the value is the JSON payload described here (camelCase names; money is a
decimal string with its ISO 4217 currency; times are RFC 3339).

**Versioning promise.** An event type's name ends with its version
(`gala.opportunity.won.v1`). Within one version a payload only ever gains: new optional
fields, and new values of an enum. It never loses or renames a field, never changes a
field's type, never makes an optional field required nor a required one optional, never
removes an enum value. Anything else is a new event type with the next version (`.v2`),
published beside the old one for as long as the old one is announced as deprecated.
Readers must therefore ignore fields they do not know and treat an enum value they do
not know as "other" (never an exhaustive switch that fails). A CI test fails on any
incompatible change to a published version, and the generator refuses to write one.

**Ordering and keys.** A message's Kafka key is its subject, the id of the aggregate it
is about (chat messages: their project, so that a conversation stays in order): one
aggregate's events arrive in the order they happened. Delivery is at least once: the
`ce_id` header is the event's unique id; de-duplicate on it.
"""


@dataclass(frozen=True)
class ServiceContract:
    """What one service declares it publishes and reacts to."""

    name: str
    publishes: Sequence[type[Event]]
    receives: Sequence[str]
    """The event types its subscriptions react to."""


def subject_field(cls: type[Event]) -> str:
    """The payload field that holds the event's subject (the aggregate's id)."""
    aggregate = cls.TYPE.split(".")[1]
    candidates = [f"{aggregate}_id", f"{aggregate.rsplit('_', 1)[-1]}_id"]
    for name in candidates:
        if name in cls.model_fields:
            return name
    raise ValueError(f"{cls.__name__}: no field {' or '.join(candidates)} holds its subject")


def key_field(cls: type[Event]) -> str:
    """The payload field whose value is the Kafka key: the subject unless the class
    declares another ``PARTITION_KEY``."""
    declared = getattr(cls, "PARTITION_KEY", None)
    return declared if isinstance(declared, str) else subject_field(cls)


def _alias(cls: type[Event], field: str) -> str:
    info = cls.model_fields[field]
    return info.serialization_alias or info.alias or field


HEADERS_SCHEMA = "CloudEventsHeaders"


def _common_headers() -> dict[str, Any]:
    """The CloudEvents attributes every message carries as Kafka headers (binary mode)."""
    properties: dict[str, Any] = {
        "ce_specversion": {
            "type": "string",
            "const": SPEC_VERSION,
            "description": "The CloudEvents specification version.",
        },
        "ce_id": {
            "type": "string",
            "description": "The event's unique id (the same on every redelivery): "
            "de-duplicate on it.",
        },
        "ce_type": {"type": "string", "description": "The event type (the message's name)."},
        "ce_source": {"type": "string", "description": "The service that published it."},
        "ce_subject": {"type": "string", "description": "The id of the aggregate it is about."},
        "ce_time": {
            "type": "string",
            "format": "date-time",
            "description": "When it happened (RFC 3339).",
        },
        "content-type": {
            "type": "string",
            "const": JSON,
            "description": "The CloudEvents `datacontenttype` of the message's value.",
        },
    }
    extension_docs = {
        "venueid": "the venue the event belongs to (every venue record's events carry it).",
        "traceparent": "the W3C trace context of the request or event that caused it.",
        "correlationid": "the id shared by every event of one journey (a request and "
        "everything it set off).",
        "causationid": "the id of the event (or request) that directly caused this one.",
    }
    for name in EXTENSIONS:
        properties[f"ce_{name}"] = {
            "type": "string",
            "description": f"CloudEvents extension `{name}`: {extension_docs.get(name, '')}",
        }
    properties["ce_traceparent"]["pattern"] = "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"
    return {
        "type": "object",
        "description": "CloudEvents 1.0 attributes in Kafka binary mode.",
        "required": [
            "ce_specversion",
            "ce_id",
            "ce_type",
            "ce_source",
            "ce_subject",
            "ce_time",
            "content-type",
        ],
        "properties": properties,
    }


def _headers(cls: type[Event], sender: str) -> dict[str, Any]:
    """The message's headers: the common ones, with what is fixed for this type."""
    subject = _alias(cls, subject_field(cls))
    return {
        "allOf": [
            {"$ref": f"#/components/schemas/{HEADERS_SCHEMA}"},
            {
                "type": "object",
                "properties": {
                    "ce_type": {"type": "string", "const": cls.TYPE},
                    "ce_source": {"type": "string", "const": f"/gala/{sender}"},
                    "ce_subject": {
                        "type": "string",
                        "description": f"The payload's `{subject}`.",
                    },
                },
            },
        ]
    }


def _example_headers(cls: type[Event], sender: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    subject = payload[_alias(cls, subject_field(cls))]
    event_id = str(uuid.uuid5(_EXAMPLE_IDS, cls.TYPE))
    return {
        "ce_specversion": SPEC_VERSION,
        "ce_id": event_id,
        "ce_type": cls.TYPE,
        "ce_source": f"/gala/{sender}",
        "ce_subject": subject,
        "ce_time": EXAMPLE_TIME.isoformat().replace("+00:00", "Z"),
        "content-type": JSON,
        "ce_venueid": payload.get("venueId", "grand-hall"),
        "ce_traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "ce_correlationid": str(uuid.uuid5(_EXAMPLE_IDS, "journey")),
        "ce_causationid": str(uuid.uuid5(_EXAMPLE_IDS, f"cause:{cls.TYPE}")),
    }


def _key_binding(cls: type[Event]) -> dict[str, Any]:
    key = _alias(cls, key_field(cls))
    if key_field(cls) == subject_field(cls):
        why = f"The subject, the payload's `{key}`: one aggregate's events share a partition."
    else:
        why = f"The payload's `{key}` (not the subject): the events that share it stay in order."
    return {"type": "string", "description": why}


def _rewrite_refs(node: Any, names: Mapping[str, str]) -> Any:
    if isinstance(node, dict):
        rewritten = {k: _rewrite_refs(v, names) for k, v in node.items()}
        ref = rewritten.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            rewritten["$ref"] = f"#/components/schemas/{names[ref.removeprefix('#/$defs/')]}"
        return rewritten
    if isinstance(node, list):
        return [_rewrite_refs(v, names) for v in node]
    return node


def _component_schemas(events: Sequence[type[Event]]) -> dict[str, Any]:
    """Each payload's schema, and the types they share (``$defs``), as components."""
    shared: dict[str, Any] = {}
    payloads: dict[str, Any] = {}
    for cls in events:
        schema = copy.deepcopy(json_schema(cls))
        for name, definition in schema.pop("$defs", {}).items():
            if name in shared and shared[name] != definition:
                raise ValueError(f"two payload types named {name} differ: rename one")
            shared[name] = definition
        for key in ("$schema", "$id", "x-gala-topic", "examples"):
            schema.pop(key, None)
        payloads[cls.TYPE] = schema
    names = {name: name for name in shared}
    if HEADERS_SCHEMA in shared:
        raise ValueError(f"a payload type may not be named {HEADERS_SCHEMA}")
    rewritten = {HEADERS_SCHEMA: _common_headers()}
    rewritten.update({name: _rewrite_refs(shared[name], names) for name in sorted(shared)})
    rewritten.update({t: _rewrite_refs(s, names) for t, s in payloads.items()})
    return rewritten


def build_document(
    services: Sequence[ServiceContract],
    events: Sequence[type[Event]],
    *,
    partitions: int,
    replicas: int,
) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of ``events``, sent and received by ``services``."""
    senders: dict[str, str] = {}
    for service in services:
        for cls in service.publishes:
            if cls.TYPE in senders and senders[cls.TYPE] != service.name:
                raise ValueError(
                    f"{cls.TYPE} is published by {senders[cls.TYPE]} and {service.name}"
                )
            senders[cls.TYPE] = service.name
    unsent = [cls.TYPE for cls in events if cls.TYPE not in senders]
    if unsent:
        raise ValueError(f"no service publishes {', '.join(unsent)}")
    receivers = {
        cls.TYPE: sorted(
            s.name for s in services if cls.TYPE in s.receives and s.name != senders[cls.TYPE]
        )
        for cls in events
    }
    by_topic: dict[str, list[type[Event]]] = {}
    for cls in sorted(events, key=lambda c: c.TYPE):
        by_topic.setdefault(cls.TOPIC, []).append(cls)

    messages: dict[str, Any] = {}
    for cls in sorted(events, key=lambda c: c.TYPE):
        sender = senders[cls.TYPE]
        payload = example(cls)
        messages[cls.TYPE] = {
            "name": cls.TYPE,
            "title": cls.__name__,
            "summary": summary(cls),
            "description": own_docstring(cls),
            "contentType": JSON,
            "headers": _headers(cls, sender),
            "payload": {"$ref": f"#/components/schemas/{cls.TYPE}"},
            "correlationId": {
                "description": "The journey this event belongs to.",
                "location": "$message.header#/ce_correlationid",
            },
            "bindings": {
                "kafka": {"key": _key_binding(cls), "bindingVersion": KAFKA_BINDING_VERSION}
            },
            "examples": [
                {
                    "name": "example",
                    "summary": summary(cls),
                    "headers": _example_headers(cls, sender, payload),
                    "payload": payload,
                }
            ],
            "x-gala-topic": cls.TOPIC,
            "x-gala-sender": sender,
            "x-gala-receivers": receivers[cls.TYPE],
            "x-gala-key": _alias(cls, key_field(cls)),
        }

    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for topic, classes in sorted(by_topic.items()):
        channel_senders = sorted({senders[c.TYPE] for c in classes})
        aggregate = topic.rsplit(".", 1)[-1]
        channels[topic] = {
            "address": topic,
            "title": topic,
            "summary": f"{aggregate.capitalize()} events, published by the "
            f"{' and '.join(channel_senders)} service.",
            "description": f"{len(classes)} event type{'s' if len(classes) > 1 else ''}. "
            "Each message is keyed as it says "
            f"(the {aggregate}'s id unless noted), so that the events sharing a key stay in "
            "order on one partition.",
            "servers": [{"$ref": f"#/servers/{SERVER}"}],
            "messages": {c.TYPE: {"$ref": f"#/components/messages/{c.TYPE}"} for c in classes},
            "bindings": {
                "kafka": {
                    "topic": topic,
                    "partitions": partitions,
                    "replicas": replicas,
                    "bindingVersion": KAFKA_BINDING_VERSION,
                }
            },
        }

        def refs(selected: Sequence[type[Event]], topic: str = topic) -> list[dict[str, str]]:
            return [{"$ref": f"#/channels/{topic}/messages/{c.TYPE}"} for c in selected]

        for sender in channel_senders:
            sent = [c for c in classes if senders[c.TYPE] == sender]
            operations[f"{sender}-sends-{topic}"] = {
                "action": "send",
                "channel": {"$ref": f"#/channels/{topic}"},
                "title": f"{sender} publishes on {topic}",
                "summary": f"The {sender} service publishes these events (source /gala/{sender}).",
                "messages": refs(sent),
                "x-gala-service": sender,
            }
        for service in sorted(services, key=lambda s: s.name):
            received = [c for c in classes if service.name in receivers[c.TYPE]]
            if not received:
                continue
            group = consumer_group(service.name)
            operations[f"{service.name}-receives-{topic}"] = {
                "action": "receive",
                "channel": {"$ref": f"#/channels/{topic}"},
                "title": f"{service.name} reacts to {topic}",
                "summary": f"The {service.name} service consumes these events "
                f"(consumer group {group}).",
                "messages": refs(received),
                "bindings": {
                    "kafka": {
                        "groupId": {"type": "string", "enum": [group]},
                        "bindingVersion": KAFKA_BINDING_VERSION,
                    }
                },
                "x-gala-service": service.name,
            }

    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:gala:events",
        "info": {
            "title": "Gala events",
            "version": CONTRACT_VERSION,
            "description": PROMISE,
            "tags": [{"name": "cloudevents"}, {"name": "kafka"}, {"name": "webhooks"}],
        },
        "defaultContentType": JSON,
        "servers": {
            SERVER: {
                "host": "{bootstrap}",
                "protocol": "kafka",
                "protocolVersion": "3.9",
                "title": "Gala's Kafka cluster",
                "description": "The broker partners with topic access are given "
                "(a placeholder: the address comes with your credentials).",
                "variables": {
                    "bootstrap": {
                        "default": "kafka.gala.example:9092",
                        "description": "The bootstrap servers, host:port.",
                    }
                },
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": _component_schemas(sorted(events, key=lambda c: c.TYPE)),
            "messages": messages,
        },
    }
