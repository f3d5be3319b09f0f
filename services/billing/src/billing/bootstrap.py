"""Wires the billing service: what it serves, stores, publishes and reacts to."""

from gala.app import ServiceDefinition

service = ServiceDefinition(
    name="billing",
    port=8005,
    description="Payment schedules, reminders, payments, and contracts to sign.",
)
