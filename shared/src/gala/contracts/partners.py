"""Events the partners service publishes.

Partner apps (a venue's integrations and their API keys) on ``gala.partners.app``,
keyed and ``subject``-ed by the app id, with the venue in the envelope (``venueid``);
webhook endpoints on ``gala.partners.endpoint``, keyed by the endpoint id.
No event ever carries a key, a key's hash or a webhook secret.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from gala.events.model import Event

# --- partner apps (helper "core") ------------------------------------------------------

PARTNER_APP_TOPIC = "gala.partners.app"


class PartnerAppEvent(Event):
    """What every partner app event carries: the app after the change."""

    app_id: str
    venue_id: str
    name: str
    description: str | None = None
    active: bool
    key_prefix: str
    """The first characters of the current key (``gala_pk_AbCd``), to tell keys apart."""
    key_created_at: datetime


class PartnerAppCreated(
    PartnerAppEvent, type="gala.partner_app.created.v1", topic=PARTNER_APP_TOPIC
):
    """A venue ADMIN created a partner app; its first API key was shown once."""


class PartnerAppKeyRotated(
    PartnerAppEvent, type="gala.partner_app.key_rotated.v1", topic=PARTNER_APP_TOPIC
):
    """The app got a new API key (shown once); the previous one stopped working."""


class PartnerAppRevoked(
    PartnerAppEvent, type="gala.partner_app.revoked.v1", topic=PARTNER_APP_TOPIC
):
    """The app was revoked: its key no longer works, for good."""

    revoked_at: datetime


PARTNER_APP_EVENTS: tuple[type[PartnerAppEvent], ...] = (
    PartnerAppCreated,
    PartnerAppKeyRotated,
    PartnerAppRevoked,
)

# --- webhook endpoints (helper "webhooks") --------------------------------------------

ENDPOINT_TOPIC = "gala.partners.endpoint"


class EndpointDisabledReason(StrEnum):
    MANUAL = "MANUAL"
    """Disabled by a venue ADMIN or the partner."""
    GONE = "GONE"
    """The receiver answered 410 Gone."""
    FAILING = "FAILING"
    """Every delivery attempt failed for the whole failure window (5 days by default)."""


class EndpointDisabled(Event, type="gala.endpoint.disabled.v1", topic=ENDPOINT_TOPIC):
    """A webhook endpoint stopped receiving deliveries (subject: the endpoint id).

    A venue ADMIN or the partner enables it again, and recovers what it missed."""

    endpoint_id: str
    venue_id: str
    url: str
    reason: EndpointDisabledReason
    disabled_at: datetime
    failing_since: datetime | None = None
    """The first failed attempt since the last success, when it failed."""


ENDPOINT_EVENTS: tuple[type[Event], ...] = (EndpointDisabled,)
