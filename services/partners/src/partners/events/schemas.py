"""The event log's answers: CloudEvents 1.0 in structured JSON, and the page around them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer

from gala.api import ResponseBody
from gala.events.envelope import EXTENSIONS
from partners.events.domain import LoggedEvent


class CloudEventOut(ResponseBody):
    """One event as a CloudEvent (structured mode); the extensions it has (``venueid``,
    ``traceparent``, ``correlationid``, ``causationid``) at the top level."""

    specversion: str = "1.0"
    id: str
    type: str = Field(examples=["gala.opportunity.won.v1"])
    source: str = Field(examples=["/gala/pipeline"])
    subject: str
    time: datetime
    datacontenttype: str = "application/json"
    data: Any = Field(description="The payload, as its JSON Schema for the type describes it.")
    venueid: str | None = None
    traceparent: str | None = None
    correlationid: str | None = None
    causationid: str | None = None

    @model_serializer(mode="wrap")
    def _without_absent_extensions(self, handler: SerializerFunctionWrapHandler) -> Any:
        shown = handler(self)
        for name in EXTENSIONS:
            if isinstance(shown, dict) and shown.get(name) is None:
                shown.pop(name, None)
        return shown

    @classmethod
    def of(cls, event: LoggedEvent) -> CloudEventOut:
        return cls(
            id=event.id,
            type=event.type,
            source=event.source,
            subject=event.subject,
            time=event.time,
            datacontenttype=event.datacontenttype,
            data=event.data,
            venueid=event.extensions.get("venueid"),
            traceparent=event.extensions.get("traceparent"),
            correlationid=event.extensions.get("correlationid"),
            causationid=event.extensions.get("causationid"),
        )


class EventPageOut(ResponseBody):
    items: list[CloudEventOut]
    next_cursor: str = Field(
        description="Where to go on from: pass it as `after`, now or later (keep it: after"
        " an outage you resume from it with nothing missing and nothing twice)."
    )
    has_more: bool = Field(description="Whether more events are ready now (else poll later).")
