"""Event payloads: one pydantic class per event type and version, and their registry.

A payload class names its CloudEvents ``type`` (``gala.<aggregate>.<event>.v<N>``) and
the topic of its aggregate stream (``gala.<service>.<aggregate>``)::

    class OpportunityWon(Event, type="gala.opportunity.won.v1",
                         topic="gala.pipeline.opportunity"):
        opportunity_id: str

Payloads are a public contract: a change is additive, or a new class with a new version.
They serialise with camelCase names, like the HTTP API.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

TYPE_PATTERN = re.compile(r"^gala\.[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+\.v[1-9][0-9]*$")
TOPIC_PATTERN = re.compile(r"^gala\.[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")


class UnknownEventType(LookupError):
    pass


class Payload(BaseModel):
    """A part of an event payload: immutable, camelCase in JSON, tolerant of new fields."""

    model_config = ConfigDict(
        frozen=True, alias_generator=to_camel, populate_by_name=True, extra="ignore"
    )


class Event(Payload):
    """Base of every event payload."""

    TYPE: ClassVar[str]
    """The CloudEvents ``type``, e.g. ``gala.opportunity.won.v1``."""
    TOPIC: ClassVar[str]
    """The aggregate stream it is published on, e.g. ``gala.pipeline.opportunity``."""

    def __init_subclass__(
        cls, *, type: str | None = None, topic: str | None = None, **kw: Any
    ) -> None:
        super().__init_subclass__(**kw)
        if type is None and topic is None:
            return  # an abstract intermediate class
        if type is None or topic is None:
            raise TypeError(f"{cls.__name__} must declare both type= and topic=")
        if not TYPE_PATTERN.match(type):
            raise ValueError(f"event type {type!r} is not gala.<aggregate>.<event>.v<N>")
        if not TOPIC_PATTERN.match(topic):
            raise ValueError(f"topic {topic!r} is not gala.<service>.<aggregate>")
        cls.TYPE = type
        cls.TOPIC = topic
        registry.register(cls)

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> Event:
        return cls.model_validate_json(data)


class EventRegistry:
    """Every known event type, by its CloudEvents ``type``."""

    def __init__(self) -> None:
        self._types: dict[str, type[Event]] = {}

    def register(self, cls: type[Event]) -> None:
        existing = self._types.get(cls.TYPE)
        if existing is not None and existing.__qualname__ != cls.__qualname__:
            raise ValueError(
                f"event type {cls.TYPE} is already declared by {existing.__qualname__}"
            )
        self._types[cls.TYPE] = cls

    def get(self, event_type: str) -> type[Event]:
        try:
            return self._types[event_type]
        except KeyError:
            raise UnknownEventType(event_type) from None

    def __contains__(self, event_type: object) -> bool:
        return event_type in self._types

    def types(self) -> list[str]:
        return sorted(self._types)


registry = EventRegistry()
