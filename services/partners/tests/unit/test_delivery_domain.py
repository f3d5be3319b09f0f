"""Deliveries' rules: the retry schedule, Retry-After, outcomes, the CloudEvent body."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from partners.deliveries.domain import (
    Attempt,
    Delivery,
    DeliveryStatus,
    RetrySchedule,
    delivery_id,
    retry_after,
    structured_cloudevent,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
STANDARD = RetrySchedule(
    tuple(timedelta(seconds=s) for s in (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)),
    jitter=0.1,
)


def test_the_schedule_is_standard_webhooks_with_jitter() -> None:
    exact = [STANDARD.next_at(n, NOW, rand=lambda a, b: 1.0) for n in range(1, 10)]
    assert [(t - NOW).total_seconds() for t in exact if t] == [
        5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400,
    ]  # fmt: skip
    assert STANDARD.next_at(10, NOW) is None  # ten attempts in all
    low = STANDARD.next_at(2, NOW, rand=lambda a, b: a)
    high = STANDARD.next_at(2, NOW, rand=lambda a, b: b)
    assert low == NOW + timedelta(seconds=270) and high == NOW + timedelta(seconds=330)


def test_retry_after_waits_at_least_as_asked_up_to_a_ceiling() -> None:
    honoured = STANDARD.next_at(1, NOW, timedelta(seconds=60), rand=lambda a, b: 1.0)
    assert honoured == NOW + timedelta(seconds=60)
    shorter = STANDARD.next_at(2, NOW, timedelta(seconds=1), rand=lambda a, b: 1.0)
    assert shorter == NOW + timedelta(seconds=300)
    capped = STANDARD.next_at(1, NOW, timedelta(days=30), rand=lambda a, b: 1.0)
    assert capped == NOW + timedelta(days=1)
    assert retry_after("120", NOW) == timedelta(seconds=120)
    assert retry_after("Tue, 01 Dec 2026 12:01:00 GMT", NOW) == timedelta(seconds=60)
    assert retry_after("soon", NOW) is None and retry_after(None, NOW) is None


def _delivery() -> Delivery:
    return Delivery.create("v", "e", "ev", "gala.x.y.v1", "{}", NOW)


def test_failures_retry_then_give_up_and_a_success_ends_it() -> None:
    schedule = RetrySchedule((timedelta(seconds=1), timedelta(seconds=2)), jitter=0)
    d = _delivery()
    assert d.next_attempt_at == NOW and d.id == delivery_id("e", "ev")
    d.record(Attempt(NOW, 5, 500), schedule, NOW)
    assert d.status is DeliveryStatus.PENDING and d.next_attempt_at == NOW + timedelta(seconds=1)
    d.record(Attempt(NOW, 5, error="timeout"), schedule, NOW)
    assert d.next_attempt_at == NOW + timedelta(seconds=2)
    d.record(Attempt(NOW, 5, 500), schedule, NOW)
    assert d.status is DeliveryStatus.FAILED and d.next_attempt_at is None
    d.resend(NOW)
    assert d.status is DeliveryStatus.PENDING and d.failures == 0
    d.record(Attempt(NOW, 5, 204), schedule, NOW)
    assert d.status is DeliveryStatus.SUCCEEDED and d.attempt_count == 4


def test_410_fails_at_once_and_retry_after_counts_only_on_429_and_503() -> None:
    schedule = RetrySchedule((timedelta(seconds=1),), jitter=0)
    gone = _delivery()
    gone.record(Attempt(NOW, 1, 410), schedule, NOW)
    assert gone.status is DeliveryStatus.FAILED
    for status, expected in ((429, 30), (503, 30), (500, 1)):
        d = _delivery()
        d.record(Attempt(NOW, 1, status, retry_after=timedelta(seconds=30)), schedule, NOW)
        assert d.next_attempt_at == NOW + timedelta(seconds=expected), status
    redirect = _delivery()
    redirect.record(Attempt(NOW, 1, 302), schedule, NOW)
    assert redirect.status is DeliveryStatus.PENDING  # a 3xx is no success


def test_the_body_is_a_structured_cloudevent() -> None:
    body = structured_cloudevent(
        event_id="id-1",
        event_type="gala.opportunity.won.v1",
        source="/gala/pipeline",
        subject="opp-1",
        time=NOW,
        data=b'{"opportunityId":"opp-1"}',
        datacontenttype="application/json",
        extensions={"venueid": "v", "traceparent": None},
    )
    event = json.loads(body)
    assert event == {
        "specversion": "1.0",
        "id": "id-1",
        "type": "gala.opportunity.won.v1",
        "source": "/gala/pipeline",
        "subject": "opp-1",
        "time": "2026-12-01T12:00:00Z",
        "datacontenttype": "application/json",
        "venueid": "v",
        "data": {"opportunityId": "opp-1"},
    }
