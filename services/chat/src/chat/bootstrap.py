"""Wires the chat service: what it serves, stores, publishes and reacts to."""

from gala.app import ServiceDefinition

service = ServiceDefinition(
    name="chat",
    port=8004,
    description="Each project's live conversation between the venue's team and the client.",
)
