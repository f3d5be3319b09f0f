"""Webhook endpoints: where a venue's events are sent, which ones, and how they are signed.

Pure: no I/O. An endpoint belongs to one venue and receives only that venue's events
whose type matches one of its filters: an exact published type
(``gala.opportunity.won.v1``) or an aggregate wildcard (``gala.payment.*``). Each
endpoint has a Standard Webhooks secret (``whsec_<base64>``); rotating it keeps the old
one signing beside the new one for an overlap (24 h by default): each delivery then
carries one signature per live secret in ``webhook-signature``, space-separated. A
delivery's signature is ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` keyed
with the secret's base64-decoded bytes.

URLs: https only unless http is allowed (dev mode, tests); no credentials in the URL; a
host that is an IP literal or ``localhost`` must be a public address unless private
targets are allowed. Names are resolved, and every resolved address checked, at
delivery time (a name may point elsewhere later: DNS rebinding).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final
from urllib.parse import urlsplit

from gala.contracts.partners import EndpointDisabled, EndpointDisabledReason
from gala.errors import Conflict, GalaError, InvalidInput, NotFound
from gala.events.model import Event

SECRET_PREFIX: Final = "whsec_"
SECRET_BYTES: Final = 24
URL_MAX: Final = 2048
DESCRIPTION_MAX: Final = 500
FILTERS_MAX: Final = 50
PING_TYPE: Final = "gala.webhook.ping.v1"


class WebhookError(GalaError):
    """Base of the webhooks module's errors."""


class InvalidEndpoint(WebhookError, InvalidInput):
    pass


class RefusedUrl(WebhookError, InvalidInput):
    code = "refused-url"
    title = "The webhook URL is refused"


class EndpointNotFound(WebhookError, NotFound):
    def __init__(self) -> None:
        super().__init__("No such webhook endpoint.")


class EndpointChangedConcurrently(WebhookError, Conflict):
    def __init__(self) -> None:
        super().__init__("The webhook endpoint kept changing meanwhile; try again.")


DisabledReason = EndpointDisabledReason


# --- URLs and addresses ------------------------------------------------------------------


def refused_address(address: str) -> str | None:
    """Why deliveries may not go to ``address`` (an IP), or ``None`` if it is public."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for refused, what in (
        (ip.is_unspecified, "unspecified"),
        (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link-local"),
        (ip.is_multicast, "multicast"),
        (ip.is_private, "private"),
        (ip.is_reserved, "reserved"),
        (not ip.is_global, "not public"),
    ):
        if refused:
            return f"is a {what} address" if what != "not public" else "is not a public address"
    return None


@dataclass(frozen=True)
class UrlPolicy:
    allow_http: bool = False
    allow_private: bool = False


@dataclass(frozen=True)
class Target:
    """Where a URL points: its scheme, host (without brackets) and port."""

    scheme: str
    host: str
    port: int

    @property
    def is_ip(self) -> bool:
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True


def check_url(url: str, policy: UrlPolicy) -> Target:
    """``url``'s target, or ``RefusedUrl`` saying why deliveries may not go there."""
    if not url or len(url) > URL_MAX:
        raise RefusedUrl(f"The URL must have 1 to {URL_MAX} characters.")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise RefusedUrl("The URL may not contain spaces or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise RefusedUrl(f"The URL is not valid: {exc}.") from exc
    scheme = parts.scheme.lower()
    allowed = ("https", "http") if policy.allow_http else ("https",)
    if scheme not in allowed:
        raise RefusedUrl("The URL must use https.")
    if parts.username is not None or parts.password is not None:
        raise RefusedUrl("The URL may not contain credentials.")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise RefusedUrl("The URL has no host.")
    if parts.fragment:
        raise RefusedUrl("The URL may not have a fragment.")
    target = Target(scheme, host, port or (443 if scheme == "https" else 80))
    if not policy.allow_private:
        if host == "localhost" or host.endswith(".localhost"):
            raise RefusedUrl("The URL may not point at this machine (localhost).")
        if target.is_ip:
            why = refused_address(host)
            if why is not None:
                raise RefusedUrl(f"The URL's address {why}.")
        elif "." not in host:
            raise RefusedUrl("The URL's host must be a fully qualified name.")
    return target


# --- event type filters ------------------------------------------------------------------


def aggregate_of(event_type: str) -> str:
    """``gala.payment.paid.v1`` -> ``payment``."""
    return event_type.split(".")[1]


def check_filters(filters: Sequence[str], known_types: Iterable[str]) -> list[str]:
    """The filters, de-duplicated in their order, each an exact known type or a
    ``gala.<aggregate>.*`` wildcard of a known aggregate; else ``InvalidEndpoint``."""
    known = set(known_types)
    aggregates = {aggregate_of(t) for t in known}
    if not filters:
        raise InvalidEndpoint("eventTypes needs at least one event type or wildcard.")
    if len(filters) > FILTERS_MAX:
        raise InvalidEndpoint(f"eventTypes takes at most {FILTERS_MAX} entries.")
    checked: list[str] = []
    for item in filters:
        if item.endswith(".*"):
            head = item[: -len(".*")]
            parts = head.split(".")
            if len(parts) != 2 or parts[0] != "gala" or parts[1] not in aggregates:
                raise InvalidEndpoint(
                    f"{item!r} is not a wildcard of a published aggregate"
                    f" (e.g. gala.payment.*; known: {', '.join(sorted(aggregates))})."
                )
        elif item not in known:
            raise InvalidEndpoint(f"{item!r} is not a published event type.")
        if item not in checked:
            checked.append(item)
    return checked


def matches(filters: Iterable[str], event_type: str) -> bool:
    for item in filters:
        if item == event_type:
            return True
        if item.endswith(".*") and event_type.startswith(item[:-1]):
            return True
    return False


# --- secrets and signatures --------------------------------------------------------------


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """One Standard Webhooks signature: ``v1,<base64 HMAC-SHA256>``."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


@dataclass(frozen=True)
class Secret:
    value: str
    created_at: datetime
    expires_at: datetime | None = None
    """Set when a newer secret replaced it: it signs until then."""

    def live(self, now: datetime) -> bool:
        return self.expires_at is None or now < self.expires_at


# --- the endpoint ------------------------------------------------------------------------


@dataclass
class Endpoint:
    id: str
    venue_id: str
    url: str
    event_types: list[str]
    description: str
    secrets: list[Secret]
    created_at: datetime
    updated_at: datetime
    enabled: bool = True
    disabled_reason: DisabledReason | None = None
    disabled_at: datetime | None = None
    failing_since: datetime | None = None
    """The first failed attempt since the last success (``None`` when healthy)."""
    version: int = 0
    _events: list[Event] = field(default_factory=list, repr=False)

    @classmethod
    def create(
        cls,
        endpoint_id: str,
        venue_id: str,
        url: str,
        event_types: list[str],
        description: str,
        now: datetime,
    ) -> Endpoint:
        return cls(
            id=endpoint_id,
            venue_id=venue_id,
            url=url,
            event_types=event_types,
            description=check_description(description),
            secrets=[Secret(new_secret(), now)],
            created_at=now,
            updated_at=now,
        )

    def collect_events(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    def wants(self, event_type: str) -> bool:
        return self.enabled and matches(self.event_types, event_type)

    def signing_secrets(self, now: datetime) -> list[Secret]:
        """The secrets that sign now: the newest first."""
        return [s for s in self.secrets if s.live(now)]

    def signatures(self, message_id: str, timestamp: int, body: bytes, now: datetime) -> str:
        """The ``webhook-signature`` header: one signature per live secret."""
        return " ".join(
            signature(s.value, message_id, timestamp, body) for s in self.signing_secrets(now)
        )

    def rotate_secret(self, now: datetime, overlap: timedelta) -> str:
        """A new secret; the current ones keep signing for ``overlap`` (at most)."""
        kept = [
            Secret(s.value, s.created_at, min(s.expires_at or now + overlap, now + overlap))
            for s in self.signing_secrets(now)
        ]
        fresh = Secret(new_secret(), now)
        self.secrets = [fresh, *[s for s in kept if s.live(now)]]
        self.updated_at = now
        return fresh.value

    def change(
        self,
        *,
        url: str | None,
        event_types: list[str] | None,
        description: str | None,
        now: datetime,
    ) -> None:
        if url is not None:
            self.url = url
        if event_types is not None:
            self.event_types = event_types
        if description is not None:
            self.description = check_description(description)
        self.updated_at = now

    def enable(self, now: datetime) -> None:
        self.enabled = True
        self.disabled_reason = None
        self.disabled_at = None
        self.failing_since = None
        self.updated_at = now

    def disable(self, reason: DisabledReason, now: datetime) -> bool:
        """``True`` if it was enabled (the change worth announcing)."""
        if not self.enabled:
            return False
        self.enabled = False
        self.disabled_reason = reason
        self.disabled_at = now
        self.updated_at = now
        self._events.append(
            EndpointDisabled(
                endpoint_id=self.id,
                venue_id=self.venue_id,
                url=self.url,
                reason=reason,
                disabled_at=now,
                failing_since=self.failing_since,
            )
        )
        return True

    def failing_for(self, now: datetime) -> timedelta:
        return now - self.failing_since if self.failing_since is not None else timedelta(0)


def check_description(description: str) -> str:
    if len(description) > DESCRIPTION_MAX:
        raise InvalidEndpoint(f"description takes at most {DESCRIPTION_MAX} characters.")
    return description
