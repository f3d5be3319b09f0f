"""Partner apps and their API keys: the rules. Pure: no I/O.

- A venue ADMIN creates a partner app (a name, an optional description); it belongs to
  that venue only, and so does its key.
- A key is ``gala_pk_`` and 43 URL-safe characters (256 random bits). It is shown once,
  when it is made (creation, rotation); only its SHA-256 is kept (a 256-bit random key
  needs no slow hash: nothing can be guessed from the digest). Its first characters
  (``keyPrefix``) are kept in clear to tell keys apart.
- Rotation replaces the key: the previous one stops working at once (no overlap; the
  gateway's short cache of key look-ups, 5 s by default, is the only delay).
- Revocation is for good: the key stops working and the app cannot be rotated again.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from gala.contracts.partners import (
    PartnerAppCreated,
    PartnerAppEvent,
    PartnerAppKeyRotated,
    PartnerAppRevoked,
)
from gala.errors import Conflict, GalaError, InvalidInput, NotFound
from gala.identity import Role
from gala.values import utc_millis

KEY_PREFIX: Final = "gala_pk_"
KEY_PATTERN: Final = re.compile(r"^gala_pk_[A-Za-z0-9_-]{43}$")
KEY_HASH_PATTERN: Final = re.compile(r"^[0-9a-f]{64}$")
SHOWN_PREFIX_LENGTH: Final = len(KEY_PREFIX) + 4
NAME_MAX: Final = 100
DESCRIPTION_MAX: Final = 1000

MANAGERS: Final = frozenset({Role.ADMIN})
"""Who creates, lists, rotates and revokes a venue's partner apps."""


class AppError(GalaError):
    """Base of the apps module's errors."""


class InvalidApp(AppError, InvalidInput):
    pass


class AppNotFound(AppError, NotFound):
    def __init__(self, detail: str = "No such partner app in this venue.") -> None:
        super().__init__(detail)


class AppRevoked(AppError, Conflict):
    def __init__(self) -> None:
        super().__init__("The partner app is revoked: create another one.")


class AppChangedConcurrently(AppError, Conflict):
    def __init__(self) -> None:
        super().__init__("The partner app changed while this request applied; try again.")


def new_key() -> str:
    """A fresh secret key: ``gala_pk_`` and 43 URL-safe characters (256 random bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def looks_like_key(value: str | None) -> bool:
    """Whether a bearer token is a partner key (and not a session token)."""
    return value is not None and value.startswith(KEY_PREFIX)


def key_hash(key: str) -> str:
    """What is stored of a key, and what the gateway sends to resolve one: its SHA-256."""
    return hashlib.sha256(key.encode()).hexdigest()


def check_key_hash(value: str) -> str:
    if not KEY_HASH_PATTERN.match(value):
        raise InvalidApp("A key hash is 64 lower-case hexadecimal characters (SHA-256).")
    return value


def normalize_name(value: str) -> str:
    name = " ".join(value.split())
    if not name or len(name) > NAME_MAX or not name.isprintable():
        raise InvalidApp(f"A partner app's name is 1 to {NAME_MAX} printable characters.")
    return name


def normalize_description(value: str | None) -> str | None:
    if value is None:
        return None
    description = value.strip()
    if len(description) > DESCRIPTION_MAX:
        raise InvalidApp(f"A description has at most {DESCRIPTION_MAX} characters.")
    return description or None


@dataclass
class PartnerApp:
    id: str
    venue_id: str
    name: str
    description: str | None
    key_hash: str
    key_prefix: str
    key_created_at: datetime
    created_at: datetime
    updated_at: datetime
    revoked_at: datetime | None = None
    version: int = 1
    pending_events: list[PartnerAppEvent] = field(default_factory=list, compare=False, repr=False)

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @classmethod
    def create(
        cls, *, venue_id: str, name: str, description: str | None, now: datetime
    ) -> tuple[PartnerApp, str]:
        """A new app of ``venue_id`` and its first key (to show once); records
        ``PartnerAppCreated``."""
        now = utc_millis(now)
        key = new_key()
        app = cls(
            id=str(uuid.uuid4()),
            venue_id=venue_id,
            name=normalize_name(name),
            description=normalize_description(description),
            key_hash=key_hash(key),
            key_prefix=key[:SHOWN_PREFIX_LENGTH],
            key_created_at=now,
            created_at=now,
            updated_at=now,
        )
        app._record(PartnerAppCreated)
        return app, key

    def rotate_key(self, now: datetime) -> str:
        """A new key (to show once); the previous one stops working. Records
        ``PartnerAppKeyRotated``."""
        if not self.active:
            raise AppRevoked()
        now = utc_millis(now)
        key = new_key()
        self.key_hash = key_hash(key)
        self.key_prefix = key[:SHOWN_PREFIX_LENGTH]
        self.key_created_at = now
        self.updated_at = max(now, self.updated_at)
        self._record(PartnerAppKeyRotated)
        return key

    def revoke(self, now: datetime) -> None:
        """Revoke for good (revoking a revoked app changes nothing)."""
        if not self.active:
            return
        now = utc_millis(now)
        self.revoked_at = now
        self.updated_at = max(now, self.updated_at)
        self._record(PartnerAppRevoked, revoked_at=now)

    def collect_events(self) -> list[PartnerAppEvent]:
        events, self.pending_events = self.pending_events, []
        return events

    def _record(self, event_type: type[PartnerAppEvent], **extra: object) -> None:
        self.pending_events.append(
            event_type.model_validate(
                {
                    "app_id": self.id,
                    "venue_id": self.venue_id,
                    "name": self.name,
                    "description": self.description,
                    "active": self.active,
                    "key_prefix": self.key_prefix,
                    "key_created_at": self.key_created_at,
                    **extra,
                }
            )
        )
