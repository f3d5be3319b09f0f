"""OpenTelemetry set-up and W3C ``traceparent`` propagation.

HTTP requests continue the caller's trace (or start one); the outbox records the
``traceparent`` current at write time on each event; a consumer starts its handler
span as a child of the event's ``traceparent``. Spans are exported over OTLP/HTTP when
``OTEL_EXPORTER_OTLP_ENDPOINT`` is set. Without an exporter, an HTTP request's span is
not recorded (nothing would read it): :func:`request_span` makes only its ids, which is
all that logs and the events a request causes carry on (``traceparent``).
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi.telemetry import TelemetryConfig
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_propagator = TraceContextTextMapPropagator()
_configured = False
_exporting = False


def configure_tracing(service: str) -> None:
    """Install a tracer provider once per process (exporting only when configured)."""
    global _configured, _exporting
    if _configured:
        return
    provider = TracerProvider(
        resource=Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service)})
    )
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        _exporting = True
    trace.set_tracer_provider(provider)
    _configured = True


def exporting() -> bool:
    """Whether spans leave the process (``configure_tracing`` found an exporter)."""
    return _exporting


def native_telemetry() -> TelemetryConfig:
    """FastAPI's own telemetry settings for a Gala app: its request and operation spans
    only when spans are exported (our :func:`request_span` is the server span; without an
    exporter they would be made, on every request, for nothing), never its OpenTelemetry
    metrics or logs (metrics are Prometheus', logs go to stdout; left on, FastAPI looks for
    their providers in the environment on every request)."""
    return {
        "tracing": _exporting,
        "operation_spans": _exporting,
        "metrics": False,
        "logs": False,
    }


def tracer() -> trace.Tracer:
    return trace.get_tracer("gala")


def current_traceparent() -> str | None:
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get("traceparent")


def context_from_traceparent(traceparent: str | None) -> otel_context.Context:
    if not traceparent:
        return otel_context.Context()
    return _propagator.extract({"traceparent": traceparent})


def current_trace_ids() -> tuple[str | None, str | None]:
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None, None
    return format(span_context.trace_id, "032x"), format(span_context.span_id, "016x")


@contextmanager
def request_span(name: str, traceparent: str | None) -> Iterator[trace.Span]:
    """The current span of one HTTP request, continuing ``traceparent`` (or a new trace).

    Recorded (a server span) when spans are exported or no provider was configured (the
    API's own no-op); else a non-recording span with fresh ids, which costs no span
    object, no attributes and no end: the ids are what logs and outgoing events use."""
    parent = context_from_traceparent(traceparent)
    if _exporting or not _configured:
        with tracer().start_as_current_span(
            name, context=parent, kind=trace.SpanKind.SERVER
        ) as span:
            yield span
        return
    remote = trace.get_current_span(parent).get_span_context()
    span = trace.NonRecordingSpan(
        trace.SpanContext(
            trace_id=remote.trace_id if remote.is_valid else random.getrandbits(128) or 1,
            span_id=random.getrandbits(64) or 1,
            is_remote=False,
            trace_flags=trace.TraceFlags(
                remote.trace_flags if remote.is_valid else trace.TraceFlags.SAMPLED
            ),
            trace_state=remote.trace_state if remote.is_valid else None,
        )
    )
    token = otel_context.attach(trace.set_span_in_context(span, parent))
    try:
        yield span
    finally:
        otel_context.detach(token)
