"""The venue event log: the rules. Pure: no I/O.

Every event a venue's records publish is appended once (by CloudEvent id) to that
venue's log, at the next *position* of a per-venue counter. A reader walks positions in
order with an opaque cursor (the last position it was given), so a partner that comes
back with its cursor gets everything after it, nothing twice.

The hard part: a writer takes its position (an atomic ``$inc``) *before* it inserts the
entry, so a reader can see position 11 while 10 is still being written. The reader
never steps over a missing position. It waits, unless the position is abandoned: an
entry at a later position was appended more than the grace period ago, and every later
position was taken after this one, so its writer is at least that late (it died, or
stalls). Then the reader *fills* the position (inserts a filler entry at it). Entry ids
are the positions (unique), so exactly one of the filler and the late writer wins the
position: a writer that loses takes a new position and appends there, ahead of every
reader. Hence nothing is skipped and nothing appears behind a reader's cursor.

Entries are read through the ``bucket`` index: position ``p`` of venue ``v`` is in
bucket ``v:p // BUCKET_SIZE`` (a string equality the store pushes down), so a page reads
at most a few buckets of ``BUCKET_SIZE`` entries, never a venue's whole log.

Events without a venue (``venueid`` and no ``venueId`` in the payload) belong to no
venue's log and are not appended. Retention: whole buckets whose entries are all older
than the retention period are deleted, after the venue's ``firstPosition`` moved past
them (readers jump over expired positions, never wait on them).

Erasure (``gala.contact.erased.v1``): every entry about the contact (its own events,
whose subject is the contact, and other records' events that name it as ``contactId``)
keeps only its position, id, type, subject and times: its data is dropped, and readers
no longer get it. The erasure event itself is kept whole (it carries no personal data),
and events about the contact that arrive later are not appended.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from gala.errors import GalaError, InvalidInput

BUCKET_SIZE: Final = 100
MAX_BUCKETS_PER_PAGE: Final = 5
"""A page reads at most this many buckets (a selective type filter answers fewer items
than asked, with a cursor to go on from)."""
MAX_TYPES: Final = 50
ERASED_TYPE: Final = "gala.contact.erased.v1"
CONTACT_TYPE_PREFIX: Final = "gala.contact."


class EventLogError(GalaError):
    """Base of the event log's errors."""


class InvalidEventQuery(EventLogError, InvalidInput):
    pass


def bucket_of(venue_id: str, position: int) -> str:
    return f"{venue_id}:{position // BUCKET_SIZE}"


def entry_id(venue_id: str, position: int) -> str:
    return f"{venue_id}:{position}"


def last_in_bucket(position: int) -> int:
    return (position // BUCKET_SIZE + 1) * BUCKET_SIZE - 1


# --- cursors ---------------------------------------------------------------------------


class CursorCodec:
    """Opaque cursors: the last position a reader was given, for one venue, signed so
    that an edited or another venue's cursor is refused (422), never trusted."""

    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(b"gala.partners.event-log-cursor|" + secret.encode()).digest()

    def encode(self, venue_id: str, position: int) -> str:
        body = base64.urlsafe_b64encode(json.dumps([1, position]).encode()).decode().rstrip("=")
        return f"{body}.{self._mac(venue_id, body)}"

    def decode(self, venue_id: str, cursor: str) -> int:
        body, _, mac = cursor.partition(".")
        if not body or not hmac.compare_digest(mac, self._mac(venue_id, body)):
            raise InvalidEventQuery("The cursor is not valid (not one this venue was given).")
        try:
            values = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        except (ValueError, binascii.Error) as exc:
            raise InvalidEventQuery("The cursor is not valid.") from exc
        if (
            not isinstance(values, list)
            or len(values) != 2
            or values[0] != 1
            or type(values[1]) is not int
            or values[1] < 0
        ):
            raise InvalidEventQuery("The cursor is not valid.")
        position: int = values[1]
        return position

    def _mac(self, venue_id: str, body: str) -> str:
        digest = hmac.new(self._key, f"{venue_id}|{body}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:16]).decode().rstrip("=")


# --- filters ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TypeFilter:
    """Exact types (``gala.opportunity.won.v1``) and aggregate wildcards
    (``gala.payment.*``); empty: every type."""

    exact: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()

    @property
    def everything(self) -> bool:
        return not self.exact and not self.prefixes

    def matches(self, event_type: str) -> bool:
        if self.everything or event_type in self.exact:
            return True
        return any(event_type.startswith(prefix) for prefix in self.prefixes)

    @classmethod
    def parse(cls, values: Iterable[str], known: Sequence[str]) -> TypeFilter:
        """From ``types=a,b`` and/or repeated ``types=``; unknown types are refused (a
        typo would otherwise answer nothing, forever)."""
        wanted = [part.strip() for value in values for part in value.split(",") if part.strip()]
        if len(wanted) > MAX_TYPES:
            raise InvalidEventQuery(f"At most {MAX_TYPES} types may be asked for.")
        aggregates = {event_type.rsplit(".", 2)[0] for event_type in known}
        exact: set[str] = set()
        prefixes: list[str] = []
        for item in wanted:
            if item.endswith(".*"):
                if item[:-2] not in aggregates:
                    raise InvalidEventQuery(f"No published event type matches {item!r}.")
                prefixes.append(item[:-1])
            elif item in known:
                exact.add(item)
            else:
                raise InvalidEventQuery(f"{item!r} is not a published event type.")
        return cls(frozenset(exact), tuple(prefixes))


@dataclass(frozen=True)
class EventQuery:
    after: int | None
    """The last position the reader was given (from its cursor); ``None``: the start."""
    types: TypeFilter
    since: datetime | None
    limit: int


# --- entries ---------------------------------------------------------------------------

FILLER: Final = "filler"
EVENT: Final = "event"
ERASED: Final = "erased"


@dataclass(frozen=True)
class LoggedEvent:
    """One event of the log, as a CloudEvent (structured JSON)."""

    position: int
    id: str
    type: str
    source: str
    subject: str
    time: datetime
    datacontenttype: str
    data: Any
    extensions: dict[str, str]

    def matches(self, query: EventQuery) -> bool:
        if not query.types.matches(self.type):
            return False
        return query.since is None or self.time >= query.since


def contact_of(event_type: str, subject: str, data: Any) -> str | None:
    """The contact an event is about, if any: a contact's own events (its id is their
    subject) or another record's that names it (``contactId``)."""
    if event_type.startswith(CONTACT_TYPE_PREFIX):
        return subject
    if isinstance(data, dict):
        contact = data.get("contactId")
        if isinstance(contact, str) and contact:
            return contact
    return None


def abandoned(later_appended_at: datetime | None, now: datetime, grace: timedelta) -> bool:
    """Whether a missing position may be given up: an entry at a later position was
    appended more than ``grace`` ago (so the missing one was taken even earlier)."""
    return later_appended_at is not None and now - later_appended_at > grace


def late(reserved_at: datetime, now: datetime, grace: timedelta) -> bool:
    """Whether a writer took its position so long ago that a reader may be giving it up:
    it then appends at a new position instead (a third of the grace period)."""
    return now - reserved_at > grace / 3
