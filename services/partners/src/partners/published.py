"""What the partners service carries to partners: every event the other services
publish (the contract's payload classes), never its own (topics ``gala.partners.*``)."""

from __future__ import annotations

from gala.contracts.schemas import published_events
from gala.events.model import Event

OWN_TOPIC_PREFIX = "gala.partners."


def events_of_other_services() -> list[type[Event]]:
    """The event log's and the webhooks' event types, ordered by type."""
    return [e for e in published_events() if not e.TOPIC.startswith(OWN_TOPIC_PREFIX)]
