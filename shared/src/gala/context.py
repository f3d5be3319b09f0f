"""Per-request and per-event context, carried by contextvars.

A request id identifies one HTTP request; the correlation id follows a whole chain of
work (a request and every event it causes, across services); the causation id is the
id of the event whose handling is running now. The outbox stamps the last two on each
event it records, so that a chain can be followed across services.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from uuid import uuid4

request_id: ContextVar[str | None] = ContextVar("gala_request_id", default=None)
correlation_id: ContextVar[str | None] = ContextVar("gala_correlation_id", default=None)
causation_id: ContextVar[str | None] = ContextVar("gala_causation_id", default=None)


def new_id() -> str:
    return uuid4().hex


@contextmanager
def bound(
    *, request: str | None = None, correlation: str | None = None, causation: str | None = None
) -> Iterator[None]:
    """Bind the given ids for the duration of a block."""
    tokens = []
    if request is not None:
        tokens.append((request_id, request_id.set(request)))
    if correlation is not None:
        tokens.append((correlation_id, correlation_id.set(correlation)))
    if causation is not None:
        tokens.append((causation_id, causation_id.set(causation)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def safe_id(value: str | None) -> str | None:
    """Accept a caller's id only if it is short and plain."""
    if value and len(value) <= 128 and all(c.isalnum() or c in "-_.:" for c in value):
        return value
    return None
