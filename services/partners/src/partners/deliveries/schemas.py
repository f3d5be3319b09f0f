"""The delivery log's bodies (camelCase JSON)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from gala.api import RequestBody, ResponseBody
from partners.deliveries.domain import Attempt, Delivery, DeliveryStatus


class AttemptOut(ResponseBody):
    at: datetime
    status_code: int | None = Field(default=None, description="None: no answer (see error).")
    duration_ms: int
    response: str = Field(description="The first KiB of the response body.")
    error: str | None = None

    @classmethod
    def of(cls, a: Attempt) -> AttemptOut:
        return cls(
            at=a.at,
            status_code=a.status_code,
            duration_ms=a.duration_ms,
            response=a.response,
            error=a.error,
        )


class DeliveryOut(ResponseBody):
    id: str
    endpoint_id: str
    event_id: str = Field(description="The CloudEvent id: the webhook-id header.")
    event_type: str
    status: DeliveryStatus
    created_at: datetime
    next_attempt_at: datetime | None = None
    succeeded_at: datetime | None = None
    failed_reason: str | None = None
    attempt_count: int
    attempts: list[AttemptOut]

    @classmethod
    def of(cls, d: Delivery) -> DeliveryOut:
        return cls(
            id=d.id,
            endpoint_id=d.endpoint_id,
            event_id=d.event_id,
            event_type=d.event_type,
            status=d.status,
            created_at=d.created_at,
            next_attempt_at=d.next_attempt_at,
            succeeded_at=d.succeeded_at,
            failed_reason=d.failed_reason,
            attempt_count=d.attempt_count,
            attempts=[AttemptOut.of(a) for a in d.attempts],
        )


class RecoverIn(RequestBody):
    since: datetime = Field(description="Resend every failed delivery made since then.")


class RecoverOut(ResponseBody):
    resent: int
