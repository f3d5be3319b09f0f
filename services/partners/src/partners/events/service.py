"""Use cases of the venue event log: append (from the consumer), erase, read a page,
expire old events. The rules are in ``domain``."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from gala.errors import InvalidInput
from gala.events.envelope import EXTENSIONS, Envelope
from gala.events.model import Event
from gala.identity import Principal, Role, ensure_role
from gala.store import Document, utc_now
from partners.events.domain import (
    BUCKET_SIZE,
    ERASED_TYPE,
    EVENT,
    FILLER,
    MAX_BUCKETS_PER_PAGE,
    EventQuery,
    LoggedEvent,
    abandoned,
    bucket_of,
    contact_of,
    entry_id,
    last_in_bucket,
    late,
)
from partners.events.repository import EventLogRepository, as_logged

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
READERS = frozenset({Role.PARTNER, Role.ADMIN})
"""A partner app's key of the venue, or the venue's ADMIN."""


@dataclass(frozen=True)
class EventPage:
    items: list[LoggedEvent]
    last: int
    """The last position this page walked past (the next cursor's)."""
    more: bool
    """Whether more positions are ready to read right now."""


class EventLog:
    def __init__(
        self,
        entries: EventLogRepository,
        *,
        grace: timedelta,
        clock: Clock = utc_now,
    ) -> None:
        self._entries = entries
        self._grace = grace
        self._clock = clock

    # --- appending (the consumer) ----------------------------------------------------

    async def append(self, envelope: Envelope, event: Event) -> int | None:
        """Log the event once (by its id) in its venue's log; its position, or ``None``
        when it was logged already or belongs to no venue's log."""
        venue_id = envelope.venueid or getattr(event, "venue_id", None)
        if not isinstance(venue_id, str) or not venue_id:
            return None
        if await self._entries.has_event(venue_id, envelope.id):
            return None
        data = json.loads(envelope.data)
        contact = contact_of(envelope.type, envelope.subject, data)
        personal = contact is not None and envelope.type != ERASED_TYPE
        if personal and await self._entries.is_erased(venue_id, contact or ""):
            return None  # an erased contact's late event: not logged
        while True:
            reserved_at = self._clock()
            position = await self._entries.take_position(venue_id)
            if late(reserved_at, self._clock(), self._grace):
                await self._entries.fill(venue_id, position, self._clock())
                continue  # readers may be giving this position up: take another
            document = self._document(venue_id, position, envelope, data, contact)
            if await self._entries.insert_entry(document):
                break
            taken = await self._entries.at(venue_id, position)
            if taken is not None and taken.get("kind") == FILLER:
                continue  # a reader gave the position up: take another
            # logged concurrently (another delivery of the same event): give the
            # position up at once rather than make readers wait for it
            await self._entries.fill(venue_id, position, self._clock())
            return None
        # erased while this was written: the erasure may not have seen it
        if personal and contact is not None and await self._entries.is_erased(venue_id, contact):
            await self._entries.redact_about(venue_id, contact)
        return position

    def _document(
        self, venue_id: str, position: int, envelope: Envelope, data: object, contact: str | None
    ) -> Document:
        document: Document = {
            "_id": entry_id(venue_id, position),
            "venueId": venue_id,
            "position": position,
            "bucket": bucket_of(venue_id, position),
            "kind": EVENT,
            "eventId": envelope.id,
            "type": envelope.type,
            "source": envelope.source,
            "subject": envelope.subject,
            "time": envelope.time,
            "datacontenttype": envelope.datacontenttype,
            # kept as the JSON text: exactly what was published, whatever its keys
            "data": envelope.data.decode(),
            "extensions": {
                name: getattr(envelope, name) for name in EXTENSIONS if getattr(envelope, name)
            },
            "appendedAt": self._clock(),
        }
        if contact is not None:
            document["contactId"] = contact
        return document

    # --- erasure --------------------------------------------------------------------

    async def erase_contact(self, venue_id: str, contact_id: str) -> int:
        """Keep nothing personal of the contact: drop the data of every entry about it
        (the erasure event itself stays); later events about it are not logged."""
        await self._entries.mark_erased(venue_id, contact_id, self._clock())
        return await self._entries.redact_about(venue_id, contact_id)

    # --- reading --------------------------------------------------------------------

    async def page(self, principal: Principal, query: EventQuery) -> EventPage:
        ensure_role(principal, READERS, "read the venue's event log")
        venue_id = principal.venue_id
        head, first = await self._entries.venue(venue_id)
        if query.after is not None:
            last = query.after
        elif query.since is not None:
            last = await self._position_before(venue_id, query.since, head, first)
        else:
            last = 0
        last = max(last, first - 1)  # expired positions are not waited for
        items: list[LoggedEvent] = []
        buckets: dict[int, dict[int, Document]] = {}

        async def bucket(number: int) -> dict[int, Document]:
            if number not in buckets:
                buckets[number] = await self._entries.bucket(venue_id, number)
            return buckets[number]

        blocked = False
        while len(items) < query.limit and last < head and not blocked:
            number = (last + 1) // BUCKET_SIZE
            if len(buckets) >= MAX_BUCKETS_PER_PAGE and number not in buckets:
                break
            entries = await bucket(number)
            end = min(head, last_in_bucket(last + 1))
            while last < end and len(items) < query.limit:
                position = last + 1
                document = entries.get(position)
                if document is None:
                    document = await self._give_up(venue_id, position, head, bucket)
                    if document is None:
                        blocked = True  # a writer is still at it: come back
                        break
                    entries[position] = document
                if document.get("kind") == EVENT:
                    logged = as_logged(document)
                    if logged.matches(query):
                        items.append(logged)
                last = position
        return EventPage(items=items, last=last, more=last < head and not blocked)

    async def _give_up(
        self,
        venue_id: str,
        position: int,
        head: int,
        bucket: Callable[[int], Awaitable[dict[int, Document]]],
    ) -> Document | None:
        """A missing position: fill it if it is abandoned (then answer what is there,
        the filler or the late entry that beat it), else ``None`` (wait for it)."""
        later: datetime | None = None
        number = position // BUCKET_SIZE
        for look in (number, number + 1):
            if look * BUCKET_SIZE > head:
                break
            entries = await bucket(look)
            after = [d for p, d in entries.items() if p > position]
            if after:
                later = min(d["appendedAt"] for d in after)
                break
        now = self._clock()
        if not abandoned(later, now, self._grace):
            return None
        found = await self._entries.fill(venue_id, position, now)
        if found is None:
            log.warning(
                "event log position given up",
                extra={"venueId": venue_id, "position": position},
            )
            return {"kind": FILLER, "position": position}
        return found

    async def _position_before(self, venue_id: str, since: datetime, head: int, first: int) -> int:
        """The position before the first bucket holding an entry appended since ``since``
        (less the grace period: replicas' clocks differ a little), by binary search over
        the buckets: a few indexed reads, never a scan."""
        threshold = since - self._grace
        low, high = first // BUCKET_SIZE, head // BUCKET_SIZE
        while low < high:
            middle = (low + high) // 2
            entries = await self._entries.bucket(venue_id, middle)
            newest = max((d["appendedAt"] for d in entries.values()), default=None)
            if newest is not None and newest >= threshold:
                high = middle
            else:
                low = middle + 1
        return max(low * BUCKET_SIZE - 1, first - 1, 0)

    # --- retention ------------------------------------------------------------------

    async def sweep(self, retention: timedelta) -> int:
        """Expire whole buckets whose entries are all older than ``retention`` (every
        worker may run it: each step is idempotent). Answers the buckets expired."""
        cutoff = self._clock() - retention
        expired = 0
        for venue in await self._entries.venues():
            venue_id = venue["_id"]
            head, first = int(venue.get("position", 0)), int(venue.get("firstPosition", 1))
            number = first // BUCKET_SIZE
            while last_in_bucket(number * BUCKET_SIZE) <= head:
                entries = await self._entries.bucket(venue_id, number)
                logged = [d["appendedAt"] for d in entries.values() if d.get("kind") != FILLER]
                if any(appended >= cutoff for appended in logged):
                    break
                await self._entries.expire_bucket(venue_id, number, (number + 1) * BUCKET_SIZE)
                expired += 1
                number += 1
        return expired


def check_since(since: datetime | None) -> datetime | None:
    if since is not None and since.tzinfo is None:
        raise InvalidInput("since needs a time zone offset (e.g. 2025-01-31T12:00:00Z).")
    return since
