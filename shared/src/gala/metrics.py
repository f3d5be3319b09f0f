"""Prometheus metrics: every process serves its own at ``GET /metrics`` (never through
the gateway, which forwards only ``/api/v1/...``).

Names and labels follow Prometheus conventions: base units (seconds), ``_total``
counters, and labels that take few values (service, method, route template, status
class, event type, outcome, consumer group, topic, partition), never an id or a venue.
One process runs one service, so the metrics live in the process's default registry; a
test that runs several services in one process tells them apart by the ``service`` label.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# --- HTTP ---------------------------------------------------------------------------------

HTTP_REQUESTS = Counter(
    "gala_http_requests",
    "HTTP requests answered, by method, route template and status class.",
    ["service", "method", "route", "status_class"],
)
HTTP_DURATION = Histogram(
    "gala_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route template.",
    ["service", "method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

# --- consumers ----------------------------------------------------------------------------

OUTCOMES = ("ok", "retried", "dead_lettered", "duplicate")
EVENTS_HANDLED = Counter(
    "gala_events_handled",
    "Events handled by a subscription, by event type and outcome "
    "(ok, retried: an attempt failed and is tried again, dead_lettered, duplicate).",
    ["service", "event_type", "outcome"],
)
EVENT_DURATION = Histogram(
    "gala_event_handling_duration_seconds",
    "Time to handle an event in one subscription, retries included, by event type.",
    ["service", "event_type"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
CONSUMER_LAG = Gauge(
    "gala_consumer_lag",
    "Messages a consumer group has yet to commit: end offset minus committed offset.",
    ["group", "topic", "partition"],
)
DEAD_LETTERS = Counter(
    "gala_dead_letters",
    "Messages parked on the service's dead-letter topic, by event type.",
    ["service", "event_type"],
)

# --- outbox -------------------------------------------------------------------------------

OUTBOX_PENDING = Gauge(
    "gala_outbox_pending_documents",
    "Documents whose events are not all published yet, by collection.",
    ["service", "collection"],
)
OUTBOX_OLDEST_AGE = Gauge(
    "gala_outbox_oldest_pending_age_seconds",
    "Age of the oldest event not published yet (0 when none is pending).",
    ["service"],
)
OUTBOX_PUBLISHED = Counter(
    "gala_outbox_published", "Events the outbox relay published.", ["service"]
)
OUTBOX_FAILURES = Counter(
    "gala_outbox_publish_failures",
    "Publishes of the outbox relay that failed (the event stays pending and is retried).",
    ["service"],
)


def record_event(service: str, event_type: str, outcome: str, seconds: float | None) -> None:
    EVENTS_HANDLED.labels(service, event_type, outcome).inc()
    if seconds is not None:
        EVENT_DURATION.labels(service, event_type).observe(seconds)


def set_lag(group: str, lag: Mapping[tuple[str, int], int]) -> None:
    for (topic, partition), value in lag.items():
        CONSUMER_LAG.labels(group, topic, str(partition)).set(value)


def set_outbox(service: str, pending: Mapping[str, int], oldest_age_seconds: float) -> None:
    for collection, count in pending.items():
        OUTBOX_PENDING.labels(service, collection).set(count)
    OUTBOX_OLDEST_AGE.labels(service).set(oldest_age_seconds)


# --- serving ------------------------------------------------------------------------------


def metrics_router() -> APIRouter:
    router = APIRouter()

    @router.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


class HttpMetricsMiddleware:
    """Counts and times every HTTP request by its route template (``/api/v1/contacts/
    {contact_id}``, never the id itself); a path no route matched counts as
    ``unmatched``."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/metrics":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = route_template(scope)
            method = str(scope.get("method", "GET"))
            HTTP_REQUESTS.labels(self.service, method, route, f"{status // 100}xx").inc()
            HTTP_DURATION.labels(self.service, method, route).observe(time.perf_counter() - started)


def route_template(scope: Scope) -> str:
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"
