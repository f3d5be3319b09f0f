"""Gala's service kernel.

Every service imports its skeleton from here: settings, logging, the document store,
the event kernel (CloudEvents over Kafka, transactional outbox, idempotent consumer),
identity, problem+json errors, health, and the app factory. A service's own code is
its domain.
"""

from gala.logging import guard_loggers

guard_loggers()
