"""Deliveries: one event to one endpoint, its attempts, and when to try again.

Pure: no I/O. A delivery's id derives from its endpoint and event (the same event
delivered again by Kafka makes no second delivery). Its body is the CloudEvent in
structured JSON, fixed at creation; ``webhook-id`` is the CloudEvent id, the same for
every attempt. The first attempt is immediate; after a failure (a non-2xx answer, a
timeout, a refused address, a connection error) the next one waits by the retry
schedule (Standard Webhooks': 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h),
varied by a jitter, and at least as long as a ``Retry-After`` on 429/503 says (up to a
ceiling). After the last wait's attempt fails the delivery is FAILED; a redelivery or
a recovery starts the schedule afresh. A 410 fails it at once (and disables the
endpoint).
"""

from __future__ import annotations

import base64
import json
import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any, Final

from gala.errors import Conflict, GalaError, NotFound

DELIVERY_NAMESPACE: Final = uuid.UUID("0d6f3c1e-5b7a-4a43-8a0e-2f7c9b61d4a5")
RESPONSE_BYTES: Final = 1024
ATTEMPTS_KEPT: Final = 100
CLOUDEVENTS_JSON: Final = "application/cloudevents+json"


class DeliveryError(GalaError):
    """Base of the deliveries module's errors."""


class DeliveryNotFound(DeliveryError, NotFound):
    def __init__(self) -> None:
        super().__init__("No such delivery of this endpoint.")


class EndpointDisabledError(DeliveryError, Conflict):
    def __init__(self) -> None:
        super().__init__("The endpoint is disabled: enable it first.")


class DeliveryStatus(StrEnum):
    PENDING = "PENDING"
    """Waiting for its next attempt (the first one, or a retry)."""
    SUCCEEDED = "SUCCEEDED"
    """The receiver answered 2xx."""
    FAILED = "FAILED"
    """Every attempt of the schedule failed, or the endpoint was disabled or answered 410."""


def delivery_id(endpoint_id: str, event_id: str) -> str:
    return str(uuid.uuid5(DELIVERY_NAMESPACE, f"{endpoint_id}|{event_id}"))


def structured_cloudevent(
    *,
    event_id: str,
    event_type: str,
    source: str,
    subject: str,
    time: datetime,
    data: bytes,
    datacontenttype: str,
    extensions: Mapping[str, str | None],
) -> str:
    """The CloudEvent in structured JSON mode (``application/cloudevents+json``)."""
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": event_id,
        "type": event_type,
        "source": source,
        "subject": subject,
        "time": time.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "datacontenttype": datacontenttype,
    }
    event.update({name: value for name, value in extensions.items() if value})
    if "json" in datacontenttype:
        event["data"] = json.loads(data)
    else:
        event["data_base64"] = base64.b64encode(data).decode()
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class Attempt:
    at: datetime
    duration_ms: int
    status_code: int | None = None
    response: str = ""
    """The first KiB of the response body (as text)."""
    error: str | None = None
    """Why there was no answer (timeout, refused address, connection error)."""
    retry_after: timedelta | None = None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def gone(self) -> bool:
        return self.status_code == 410


def retry_after(value: str | None, now: datetime) -> timedelta | None:
    """A ``Retry-After`` header (seconds, or an HTTP date) as a wait; ``None`` if absent
    or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(moment - now, timedelta(0))


@dataclass(frozen=True)
class RetrySchedule:
    waits: tuple[timedelta, ...]
    """Before each retry; the first attempt is immediate."""
    jitter: float = 0.1
    max_retry_after: timedelta = timedelta(days=1)

    def next_at(
        self,
        failures: int,
        now: datetime,
        honoured: timedelta | None = None,
        rand: Callable[[float, float], float] = random.uniform,
    ) -> datetime | None:
        """When to try again after the ``failures``-th failure of this round (``None``:
        the schedule is over). ``honoured``: what a Retry-After asked for."""
        if failures > len(self.waits):
            return None
        wait = self.waits[failures - 1]
        wait = wait * rand(1 - self.jitter, 1 + self.jitter) if self.jitter else wait
        if honoured is not None:
            wait = max(wait, min(honoured, self.max_retry_after))
        return now + wait


@dataclass
class Delivery:
    id: str
    venue_id: str
    endpoint_id: str
    event_id: str
    event_type: str
    body: str
    created_at: datetime
    status: DeliveryStatus = DeliveryStatus.PENDING
    next_attempt_at: datetime | None = None
    failures: int = 0
    """Failed attempts since the schedule last started."""
    attempts: list[Attempt] = field(default_factory=list)
    attempt_count: int = 0
    succeeded_at: datetime | None = None
    failed_reason: str | None = None

    @classmethod
    def create(
        cls,
        venue_id: str,
        endpoint_id: str,
        event_id: str,
        event_type: str,
        body: str,
        now: datetime,
    ) -> Delivery:
        return cls(
            id=delivery_id(endpoint_id, event_id),
            venue_id=venue_id,
            endpoint_id=endpoint_id,
            event_id=event_id,
            event_type=event_type,
            body=body,
            created_at=now,
            next_attempt_at=now,
        )

    def record(self, attempt: Attempt, schedule: RetrySchedule, now: datetime) -> None:
        """The outcome of an attempt: done, failed for good, or when to try again."""
        self.attempts = [*self.attempts, attempt][-ATTEMPTS_KEPT:]
        self.attempt_count += 1
        if attempt.succeeded:
            self.status = DeliveryStatus.SUCCEEDED
            self.succeeded_at = now
            self.next_attempt_at = None
            self.failed_reason = None
            return
        self.failures += 1
        honoured = attempt.retry_after if attempt.status_code in (429, 503) else None
        following = None if attempt.gone else schedule.next_at(self.failures, now, honoured)
        if following is None:
            self.fail("The receiver answered 410 Gone." if attempt.gone else "Retries exhausted.")
        else:
            self.status = DeliveryStatus.PENDING
            self.next_attempt_at = following

    def fail(self, reason: str) -> None:
        self.status = DeliveryStatus.FAILED
        self.next_attempt_at = None
        self.failed_reason = reason

    def resend(self, now: datetime) -> None:
        """Send it again now, with the schedule started afresh (redeliver, recover)."""
        self.status = DeliveryStatus.PENDING
        self.next_attempt_at = now
        self.failures = 0
        self.failed_reason = None
