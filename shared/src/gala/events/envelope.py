"""The CloudEvents 1.0 envelope in Kafka binary mode.

Attributes travel as ``ce_*`` headers (``content-type`` carries ``datacontenttype``),
the JSON payload is the message value, and the key is the subject (the aggregate id)
so that one aggregate's events share a partition and stay ordered. Extensions:
``venueid``, ``traceparent`` (W3C trace context), ``correlationid``, ``causationid``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

SPEC_VERSION = "1.0"
JSON = "application/json"
CE_PREFIX = "ce_"
CONTENT_TYPE = "content-type"
EXTENSIONS = ("venueid", "traceparent", "correlationid", "causationid")

Headers = list[tuple[str, bytes]]


class MalformedEnvelope(ValueError):
    """A message that is not a CloudEvent this kernel can read: never retried."""


@dataclass(frozen=True)
class Envelope:
    id: str
    type: str
    source: str
    subject: str
    time: datetime
    data: bytes
    venueid: str | None = None
    traceparent: str | None = None
    correlationid: str | None = None
    causationid: str | None = None
    datacontenttype: str = JSON
    partition_key: str | None = None
    """The Kafka key when it is not the subject (e.g. a chat message's project, so that a
    conversation's messages stay in order); never sent as a header."""

    @property
    def key(self) -> bytes:
        return (self.partition_key or self.subject).encode()

    def headers(self) -> Headers:
        headers: Headers = [
            ("ce_specversion", SPEC_VERSION.encode()),
            ("ce_id", self.id.encode()),
            ("ce_type", self.type.encode()),
            ("ce_source", self.source.encode()),
            ("ce_subject", self.subject.encode()),
            ("ce_time", self.time.astimezone(UTC).isoformat().encode()),
            (CONTENT_TYPE, self.datacontenttype.encode()),
        ]
        for name in EXTENSIONS:
            value = getattr(self, name)
            if value:
                headers.append((CE_PREFIX + name, value.encode()))
        return headers

    @classmethod
    def from_kafka(
        cls, headers: Iterable[tuple[str, bytes | None]], value: bytes | None
    ) -> Envelope:
        attributes: dict[str, str] = {}
        try:
            for name, raw in headers:
                lowered = name.lower()
                if raw is None:
                    continue
                if lowered == CONTENT_TYPE:
                    attributes["datacontenttype"] = raw.decode()
                elif lowered.startswith(CE_PREFIX):
                    attributes[lowered[len(CE_PREFIX) :]] = raw.decode()
        except UnicodeDecodeError as exc:
            raise MalformedEnvelope("a CloudEvents header is not UTF-8") from exc
        if attributes.get("specversion") != SPEC_VERSION:
            raise MalformedEnvelope("not a CloudEvents 1.0 binary-mode message")
        missing = [a for a in ("id", "type", "source", "subject") if not attributes.get(a)]
        if missing:
            raise MalformedEnvelope(f"missing CloudEvents attributes: {', '.join(missing)}")
        try:
            time = datetime.fromisoformat(attributes["time"]) if "time" in attributes else None
        except ValueError as exc:
            raise MalformedEnvelope("ce_time is not an RFC 3339 timestamp") from exc
        if value is None:
            raise MalformedEnvelope("the message has no data")
        extensions: dict[str, Any] = {name: attributes.get(name) for name in EXTENSIONS}
        return cls(
            id=attributes["id"],
            type=attributes["type"],
            source=attributes["source"],
            subject=attributes["subject"],
            time=time or datetime.now(UTC),
            data=value,
            datacontenttype=attributes.get("datacontenttype", JSON),
            **extensions,
        )
