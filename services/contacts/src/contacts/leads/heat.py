"""Lead heat: how likely a contact is to book, 0 to 100, by rules a salesperson can read.

Each rule looks at one signal and gives points with a sentence saying why; the heat is
their sum, capped at 100. Signals come from the contact itself (its source) and from
other services' events (its opportunities, and the client's engagement: messages,
signed documents, payments), and from the person coming back through the venue's
website form (each new inquiry of a known contact), so heat changes when those arrive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from gala.contracts.contacts import HeatReason, LeadSource

MAX_HEAT = 100

SOURCE_POINTS = {
    LeadSource.REFERRAL: 25,
    LeadSource.DIRECT: 20,
    LeadSource.WEBSITE: 15,
    LeadSource.FACEBOOK: 10,
    LeadSource.INSTAGRAM: 10,
    LeadSource.LINKEDIN: 10,
    LeadSource.OTHER: 5,
}
EVENT_SOON = ((30, 25), (90, 15), (180, 8))  # within N days -> points
EVENT_LATER_POINTS = 3
GUESTS = ((200, 15), (100, 10), (50, 5))  # at least N guests -> points
VALUE = ((Decimal(20000), 15), (Decimal(5000), 10), (Decimal(1000), 5))
MESSAGE_POINTS, MESSAGE_CAP = 2, 10
SIGNED_POINTS, SIGNED_CAP = 10, 10
PAID_POINTS, PAID_CAP = 10, 15
INQUIRY_POINTS, INQUIRY_CAP = 5, 15


@dataclass(frozen=True)
class OpenOpportunity:
    """What heat needs to know of one of the contact's open opportunities."""

    opportunity_id: str
    event_date: datetime | None = None
    guest_count: int | None = None
    value: Decimal | None = None
    currency: str | None = None


@dataclass(frozen=True)
class Signals:
    source: LeadSource
    opportunities: tuple[OpenOpportunity, ...] = ()
    client_messages: int = 0
    documents_signed: int = 0
    payments_paid: int = 0
    inquiries: int = 0
    """The times a known contact came back through the website form."""


@dataclass(frozen=True)
class Heat:
    value: int
    reasons: tuple[HeatReason, ...] = field(default_factory=tuple)


def _first(thresholds: tuple[tuple[int, int], ...], days: int) -> int:
    return next((points for limit, points in thresholds if days <= limit), EVENT_LATER_POINTS)


def compute(signals: Signals, now: datetime) -> Heat:
    reasons = [
        HeatReason(
            rule="source",
            points=SOURCE_POINTS[signals.source],
            detail=f"came from {signals.source.value.lower()}",
        )
    ]
    upcoming = [o.event_date for o in signals.opportunities if o.event_date and o.event_date > now]
    if upcoming:
        days = (min(upcoming) - now).days
        reasons.append(
            HeatReason(
                rule="event-date", points=_first(EVENT_SOON, days), detail=f"event in {days} days"
            )
        )
    guests = max((o.guest_count or 0 for o in signals.opportunities), default=0)
    if points := next((p for limit, p in GUESTS if guests >= limit), 0):
        reasons.append(HeatReason(rule="guests", points=points, detail=f"{guests} guests"))
    top = max(signals.opportunities, key=lambda o: o.value or Decimal(0), default=None)
    value = top.value if top is not None and top.value is not None else Decimal(0)
    if top is not None and (points := next((p for limit, p in VALUE if value >= limit), 0)):
        money = f"{value} {top.currency or ''}".strip()
        reasons.append(HeatReason(rule="value", points=points, detail=f"worth {money}"))
    engagement = (
        ("messages", signals.client_messages, MESSAGE_POINTS, MESSAGE_CAP, "client message(s)"),
        ("signed", signals.documents_signed, SIGNED_POINTS, SIGNED_CAP, "document(s) signed"),
        ("paid", signals.payments_paid, PAID_POINTS, PAID_CAP, "payment(s) made"),
        ("inquiries", signals.inquiries, INQUIRY_POINTS, INQUIRY_CAP, "new inquiry(ies)"),
    )
    for rule, count, each, cap, what in engagement:
        if count:
            reasons.append(
                HeatReason(rule=rule, points=min(cap, count * each), detail=f"{count} {what}")
            )
    return Heat(min(MAX_HEAT, sum(r.points for r in reasons)), tuple(reasons))
