"""How a Gala process serves HTTP: uvloop's event loop and httptools' parser (issue #16),
as ``python -m <service>`` really runs, and without an exporter no span is recorded while
the caller's trace still continues."""

import json
import os
from pathlib import Path

import httpx
import pytest

from gala import tracing
from gala.store import Store
from gala.testing import ServiceProcess, free_port, unique_name


def serving_line(output: str) -> dict:
    for line in output.splitlines():
        if line.startswith("{") and json.loads(line).get("msg") == "serving":
            return json.loads(line)
    raise AssertionError(f"no 'serving' line in:\n{output[-3000:]}")


@pytest.mark.asyncio(loop_scope="session")
async def test_a_service_process_serves_on_uvloop_with_httptools(infra, tmp_path: Path):
    port, database = free_port(), unique_name("gala_serving_")
    env = {
        **os.environ,
        "GALA_DEV_MODE": "true",
        "GALA_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
        "GALA_MONGO_URL": infra.mongo_url,
        "GALA_MONGO_DATABASE": database,
        "GALA_LOG_LEVEL": "INFO",
        "GALA_CONTACTS_PORT": str(port),
    }
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    process = ServiceProcess(
        "contacts", env, port, ("--role", "api"), log_file=tmp_path / "contacts.log"
    )
    try:
        async with process:
            async with httpx.AsyncClient(base_url=process.url) as http:
                live = await http.get("/health/live")
            assert live.status_code == 200
            line = serving_line(process.output())
    finally:
        store = Store(infra.mongo_url, "admin")
        try:
            await store.client.drop_database(database)
        finally:
            await store.close()
    assert line["loop"] == "uvloop"
    assert line["http_protocol"] == "HttpToolsProtocol"
    assert line["port"] == port


def test_without_an_exporter_a_request_span_continues_the_trace_unrecorded(monkeypatch):
    monkeypatch.setattr(tracing, "_configured", True)
    monkeypatch.setattr(tracing, "_exporting", False)
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    caller = f"00-{trace_id}-00f067aa0ba902b7-01"
    with tracing.request_span("GET /x", caller) as span:
        assert not span.is_recording()
        current = tracing.current_traceparent()
        ids = tracing.current_trace_ids()
    assert current is not None
    _, continued, span_id, flags = current.split("-")
    assert (continued, flags) == (trace_id, "01")
    assert span_id != "00f067aa0ba902b7"  # a span of its own, the caller's child
    assert ids == (trace_id, span_id)
    assert tracing.current_traceparent() is None  # left behind once the request ends
    with tracing.request_span("GET /y", None):
        fresh = tracing.current_traceparent()
    assert fresh is not None and fresh.split("-")[1] != trace_id
    assert tracing.native_telemetry()["tracing"] is False
