"""One trace per journey: a won opportunity, from the HTTP request through the gateway to
every handler it triggers across the bus, is one trace, exported over OTLP/HTTP.

The whole system runs as processes exporting to a real OTLP/HTTP receiver (protobuf
``ExportTraceServiceRequest`` at ``/v1/traces``, as a collector receives it). The win is
sent with a ``traceparent`` of the test's own, so that its trace id is known.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gala.settings import Settings
from gala.testing import eventually, http_server, unique_name
from tests.e2e.system import whole_system

pytestmark = pytest.mark.integration

JOURNEY = ("gateway", "pipeline", "projects", "billing", "chat")


class Receiver:
    """Spans received, by trace id: (service, span name, kind) each."""

    def __init__(self) -> None:
        self.spans: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
        self.app = FastAPI()

        @self.app.post("/v1/traces")
        async def traces(request: Request) -> Response:
            export = ExportTraceServiceRequest.FromString(await request.body())
            for resource_spans in export.resource_spans:
                attributes = {
                    a.key: a.value.string_value for a in resource_spans.resource.attributes
                }
                service = attributes.get("service.name", "?")
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self.spans[span.trace_id.hex()].append((service, span.name, span.kind))
            return Response(ExportTraceServiceRequest().SerializeToString(),
                            media_type="application/x-protobuf")  # fmt: skip

    def services(self, trace_id: str) -> set[str]:
        return {service for service, _, _ in self.spans.get(trace_id, [])}


async def test_a_won_opportunity_is_one_trace_across_every_service(
    infra: Settings, tmp_path: Path
) -> None:
    receiver = Receiver()
    async with http_server(receiver.app) as collector:
        exporting = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_BSP_SCHEDULE_DELAY": "200",  # milliseconds: export soon, not every 5 s
        }
        async with whole_system(infra, tmp_path, extra_env=exporting) as system:
            _, _, token = await system.add_user(unique_name("venue-"), "ADMIN")
            headers = {"Authorization": f"Bearer {token}"}
            async with httpx.AsyncClient(base_url=system.gateway, headers=headers) as api:
                contact = await api.post(
                    "/api/v1/contacts",
                    json={"name": "Ada Lovelace", "email": f"{unique_name('ada-')}@example.com"},
                )
                assert contact.status_code == 201, contact.text
                event_date = (datetime.now(UTC) + timedelta(days=200)).strftime(
                    "%Y-%m-%dT18:00:00Z"
                )
                wedding = {"name": "Lovelace wedding", "contactId": contact.json()["id"],
                           "value": "12000.00", "eventType": "wedding",
                           "eventDate": event_date}  # fmt: skip

                async def opened() -> str | None:
                    response = await api.post("/api/v1/opportunities", json=wedding)
                    return str(response.json()["id"]) if response.status_code == 201 else None

                opportunity: list[str] = []

                async def open_it() -> bool:
                    found = await opened()
                    if found:
                        opportunity.append(found)
                    return bool(found)

                await eventually(open_it, timeout=30)  # the pipeline learns the contact
                trace_id = secrets.token_hex(16)
                traceparent = f"00-{trace_id}-{secrets.token_hex(8)}-01"
                won = await api.post(
                    f"/api/v1/opportunities/{opportunity[0]}/win",
                    headers={"traceparent": traceparent},
                )
                assert won.status_code == 200, won.text

            async def whole_journey() -> bool:
                return set(JOURNEY) <= receiver.services(trace_id)

            await eventually(whole_journey, timeout=60)
    spans = receiver.spans[trace_id]
    # the HTTP hop at the gateway and at the pipeline, and a consumer span in each reactor
    kinds = {(service, kind) for service, _, kind in spans}
    server, consumer = 2, 5  # SpanKind values in OTLP
    assert ("gateway", server) in kinds and ("pipeline", server) in kinds
    for reactor in ("projects", "billing", "chat"):
        assert (reactor, consumer) in kinds, f"no handler span of {reactor}: {spans}"
