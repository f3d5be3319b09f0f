"""Wires the pipeline service: what it serves, stores, publishes and reacts to."""

from gala.app import ServiceDefinition

service = ServiceDefinition(
    name="pipeline",
    port=8002,
    description="Opportunities through per-venue stages, rooms without double bookings.",
)
