"""Wires the contacts service: what it serves, stores, publishes and reacts to."""

from gala.app import ServiceDefinition

service = ServiceDefinition(
    name="contacts",
    port=8001,
    description="Leads, their heat, and the people directory: staff and clients with roles.",
)
