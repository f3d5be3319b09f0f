"""Wires the projects service: what it serves, stores, publishes and reacts to."""

from gala.app import ServiceDefinition

service = ServiceDefinition(
    name="projects",
    port=8003,
    description="Event projects from won opportunities, their tasks, the client portal.",
)
