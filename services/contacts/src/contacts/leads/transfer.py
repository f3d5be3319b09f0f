"""Use cases for contacts in and out as CSV (ADMIN and SALES, in the caller's venue).

The import creates or updates contacts by email while the body streams in: it holds
one batch of records at a time, never the file. Per batch of ``BATCH_RECORDS``: one
``$in`` lookup of the batch's emails, one unordered bulk insert of the new contacts
(each carrying its ContactCreated in its own document: the outbox needs no
transaction), and a version-checked save of each changed existing contact. While the
batches are mostly new contacts the lookup is skipped: the bulk insert goes first and
only the emails its unique index refuses are looked up (see ``_write``). Rows with
one email are applied in file order, so a repeated email updates what the earlier
row made. A contact that changed (or was created) meanwhile is read again and its
rows applied anew, a few times. There is no transaction across batches: what earlier
batches wrote stays if a later one fails, and importing the same file again is safe:
the contacts end as they were, and each row whose email no other row repeats answers
"unchanged".

An import job (``contacts.imports``) applies its staged file through
:meth:`ContactTransfer.import_batch`, one batch at a time, with a :class:`BatchTag`:
every contact a batch writes carries the tag and what the batch's rows did to it
(``importMark``, in the same single-document write as the change and its events).
A job resumed after a crash re-applies its last unrecorded batch with ``recover``: the
emails whose contact already carries that batch's mark are taken as done, with the
outcomes the mark records, so each row counts once and nothing is written twice.

The export walks the filtered listing a page at a time (keyset paging), so it never
holds more than a page either.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from contacts.leads.csv_format import (
    EXPORT_COLUMNS,
    ContactRow,
    Header,
    InvalidCsv,
    Record,
    RecordSplitter,
    export_row,
    to_csv,
)
from contacts.leads.domain import Contact, ContactError, ContactPatch
from contacts.leads.repository import ContactFilter, ContactRepository
from contacts.leads.service import CONTACT_ROLES, Clock
from gala.concurrency import save_attempts
from gala.contracts.contacts import ContactStatus, LeadSource
from gala.identity import Principal, ensure_role
from gala.store import Document, utc_now
from gala.values import UNSET

BATCH_RECORDS = 500
REJECTIONS_LISTED = 1000
SAVE_CONCURRENCY = 16
EXPORT_PAGE = 500
KEPT_CHANGING = "The contact kept changing while this row was imported; import it again."


@dataclass(frozen=True, slots=True)
class Rejection:
    line: int
    reason: str


@dataclass
class ImportReport:
    """What an import did, row by row: every rejection counts, the first ones are listed."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    rejections: list[Rejection] = field(default_factory=list)

    def reject(self, line: int, reason: str) -> None:
        self.rejected += 1
        if len(self.rejections) < REJECTIONS_LISTED:
            self.rejections.append(Rejection(line, reason))

    def add(self, batch: BatchOutcome) -> None:
        self.created += batch.created
        self.updated += batch.updated
        self.unchanged += batch.unchanged
        for rejection in batch.rejections:
            self.reject(rejection.line, rejection.reason)


class Outcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass
class BatchOutcome:
    """What one batch's rows did: counts, every rejection (in line order), and whether
    the next batch should look its emails up before writing (most of these existed)."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    look_first: bool = False


@dataclass(frozen=True, slots=True)
class BatchTag:
    """Batch ``batch`` (from 0) of import job ``job_id``: what its writes are marked with."""

    job_id: str
    batch: int

    def mark(self, outcomes: Sequence[Outcome], rejections: Sequence[Rejection]) -> Document:
        """The ``importMark`` of a contact this batch writes: what its rows did to it."""
        return {
            "job": self.job_id,
            "batch": self.batch,
            "outcomes": [outcome.value for outcome in outcomes],
            "rejections": [{"line": r.line, "reason": r.reason} for r in rejections],
        }

    @staticmethod
    def read(mark: Document) -> tuple[list[Outcome], list[Rejection]]:
        """What a mark says its batch's rows did (the inverse of :meth:`mark`)."""
        return (
            [Outcome(outcome) for outcome in mark.get("outcomes", [])],
            [Rejection(int(r["line"]), str(r["reason"])) for r in mark.get("rejections", [])],
        )


@dataclass
class _Applied:
    """The rows of one email applied to its contact (``None``: none yet), in memory."""

    contact: Contact | None
    new: bool = False
    outcomes: list[Outcome] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)


class ContactTransfer:
    def __init__(self, contacts: ContactRepository, clock: Clock = utc_now) -> None:
        self._contacts = contacts
        self._clock = clock

    # --- import -----------------------------------------------------------------------

    async def import_csv(self, principal: Principal, chunks: AsyncIterator[bytes]) -> ImportReport:
        """Create or update the venue's contacts from a CSV body, by email.

        A file that is not a CSV of contacts (no header, an unknown column) is refused
        with InvalidCsv before anything is written; a bad row is rejected alone.
        """
        ensure_role(principal, CONTACT_ROLES, "import contacts")
        report = ImportReport()
        splitter = RecordSplitter()
        header: Header | None = None
        batch: list[Record] = []
        look_first = False  # until a batch shows that most of its emails exist
        async for chunk in chunks:
            for record in splitter.feed(chunk):
                if header is None:
                    header = Header.of(record)
                    continue
                batch.append(record)
                if len(batch) >= BATCH_RECORDS:
                    look_first = await self._import_batch(
                        principal, header, batch, report, look_first=look_first
                    )
                    batch = []
            if splitter.stopped:
                break  # a runaway record: the rest cannot be read
        for record in splitter.close():
            if header is None:
                header = Header.of(record)
            else:
                batch.append(record)
        if header is None:
            raise InvalidCsv("The file is empty: its first line must be a header naming columns.")
        await self._import_batch(principal, header, batch, report, look_first=look_first)
        return report

    async def _import_batch(
        self,
        principal: Principal,
        header: Header,
        records: Sequence[Record],
        report: ImportReport,
        *,
        look_first: bool,
    ) -> bool:
        """Import one batch; answers whether the next should look its emails up first."""
        outcome = await self.import_batch(principal, header, records, look_first=look_first)
        report.add(outcome)
        return outcome.look_first

    async def import_batch(
        self,
        principal: Principal,
        header: Header,
        records: Sequence[Record],
        *,
        look_first: bool,
        tag: BatchTag | None = None,
        recover: bool = False,
    ) -> BatchOutcome:
        """Create or update the contacts of one batch of data records (file order).

        With a ``tag`` every contact written carries the batch's mark; with ``recover``
        too (the batch may have been applied before a crash) the emails whose contact
        carries this very mark are taken as done, as the mark says, before anything is
        written. The caller checks the role (this runs for a job, long after the request).
        """
        rejections: list[Rejection] = []
        by_email: dict[str, list[ContactRow]] = {}
        for record in records:
            try:
                row = header.row(record)
            except ContactError as exc:
                rejections.append(Rejection(record.line, exc.detail))
                continue
            by_email.setdefault(row.email, []).append(row)
        outcomes, existing = await self._write(
            principal, by_email, rejections, look_first, tag, recover
        )
        result = BatchOutcome(
            rejections=sorted(rejections, key=lambda r: r.line),
            look_first=existing * 2 > len(by_email),
        )
        for outcome in outcomes:
            if outcome == Outcome.CREATED:
                result.created += 1
            elif outcome == Outcome.UPDATED:
                result.updated += 1
            else:
                result.unchanged += 1
        return result

    async def _write(
        self,
        principal: Principal,
        by_email: dict[str, list[ContactRow]],
        rejections: list[Rejection],
        look_first: bool,
        tag: BatchTag | None = None,
        recover: bool = False,
    ) -> tuple[list[Outcome], int]:
        """Apply each email's rows to its contact and store the results.

        Answers the rows' outcomes and how many of the emails had a contact already.
        ``look_first`` reads the emails' contacts before writing (one ``$in`` query);
        otherwise every email is first taken for a new one and only those the bulk
        insert finds taken are read: a file of new contacts then costs no read at all.
        Either way a result is kept only once its write is known to have applied to
        the state it was computed from; anything else is read and applied again.
        With a ``tag``, a retry (and, with ``recover``, the first attempt) first takes
        the emails whose contact carries the tag's mark as done, as the mark says: a
        crashed or stalled earlier run of this batch wrote them.
        """
        outcomes: list[Outcome] = []
        existed = 0
        pending = dict(by_email)
        async for attempt in save_attempts():
            if tag is not None and pending and (recover or attempt > 0):
                done_before = await self._contacts.import_marks(
                    principal.venue_id, list(pending), tag.job_id, tag.batch
                )
                for email, mark in done_before.items():
                    del pending[email]
                    done, refused = BatchTag.read(mark)
                    existed += bool(done) and done[0] != Outcome.CREATED
                    outcomes.extend(done)
                    rejections.extend(refused)
            if not pending:
                break
            looked_up = look_first or recover or attempt > 0
            existing = (
                await self._contacts.by_emails(principal.venue_id, list(pending))
                if looked_up
                else {}
            )
            now = self._clock()
            applied = {
                email: self._apply(principal, existing.get(email), rows, now)
                for email, rows in pending.items()
            }
            new = [a.contact for a in applied.values() if a.new and a.contact is not None]
            changed = [
                a.contact
                for a in applied.values()
                if not a.new and a.contact is not None and a.contact.pending_events
            ]
            marks: dict[str, Document] = {}
            if tag is not None:
                marks = {
                    a.contact.id: tag.mark(a.outcomes, a.rejections)
                    for a in applied.values()
                    if a.contact is not None
                }
            lost = await self._contacts.add_many(new, marks)
            lost |= await self._save_all(changed, marks)
            retry: dict[str, list[ContactRow]] = {}
            for email, result in applied.items():
                if result.contact is None and not looked_up:
                    # every row was refused as a new contact; one that exists may take them
                    retry[email] = pending[email]
                elif result.contact is not None and result.contact.id in lost:
                    retry[email] = pending[email]  # created or changed meanwhile: again
                else:
                    if result.contact is not None and not result.new:
                        existed += 1
                    outcomes.extend(result.outcomes)
                    rejections.extend(result.rejections)
            pending = retry
        for rows in pending.values():
            rejections.extend(Rejection(row.line, KEPT_CHANGING) for row in rows)
        return outcomes, existed

    def _apply(
        self,
        principal: Principal,
        contact: Contact | None,
        rows: Sequence[ContactRow],
        now: datetime,
    ) -> _Applied:
        applied = _Applied(contact)
        for row in rows:
            try:
                if applied.contact is None:
                    applied.contact = Contact.create(
                        venue_id=principal.venue_id,
                        name=row.name,
                        email=row.email,
                        now=now,
                        phone=row.phone,
                        lead_source=row.lead_source or LeadSource.OTHER,
                        status=row.status or ContactStatus.UNQUALIFIED,
                        custom_fields=row.custom_fields,
                    )
                    applied.new = True
                    applied.outcomes.append(Outcome.CREATED)
                    continue
                # A row changes the contact entirely or not at all. The domain's methods
                # assign new values (never mutate them) and append events: a shallow copy
                # with its own event list is enough to keep the last good state.
                changed = copy.copy(applied.contact)
                changed.pending_events = list(applied.contact.pending_events)
                events = len(changed.pending_events)
                changed.update(_patch(row), now)
                if row.status is not None:
                    changed.move_to(row.status, role=principal.role, now=now)
                applied.contact = changed
                applied.outcomes.append(
                    Outcome.UPDATED if len(changed.pending_events) > events else Outcome.UNCHANGED
                )
            except ContactError as exc:
                applied.rejections.append(Rejection(row.line, exc.detail))
        return applied

    async def _save_all(
        self, contacts: Sequence[Contact], marks: Mapping[str, Document]
    ) -> set[str]:
        """Save each (version-checked, with its mark if any); the ids of those someone
        changed meanwhile."""
        lost: set[str] = set()
        gate = asyncio.Semaphore(SAVE_CONCURRENCY)

        async def save(contact: Contact) -> None:
            async with gate:
                if not await self._contacts.save(contact, marks.get(contact.id)):
                    lost.add(contact.id)

        async with asyncio.TaskGroup() as group:
            for contact in contacts:
                group.create_task(save(contact))
        return lost

    # --- export -----------------------------------------------------------------------

    def export_csv(
        self, principal: Principal, where: ContactFilter, sort: str
    ) -> AsyncIterator[bytes]:
        """The filtered contacts as CSV, a page at a time (the role is checked at once)."""
        ensure_role(principal, CONTACT_ROLES, "export contacts")
        return self._export(principal.venue_id, where, sort)

    async def _export(self, venue_id: str, where: ContactFilter, sort: str) -> AsyncIterator[bytes]:
        yield to_csv([EXPORT_COLUMNS])
        cursor: str | None = None
        while True:
            contacts, cursor = await self._contacts.page(venue_id, where, sort, EXPORT_PAGE, cursor)
            if contacts:
                yield to_csv(export_row(contact) for contact in contacts)
            if cursor is None:
                return


def _patch(row: ContactRow) -> ContactPatch:
    """What a row changes of an existing contact: only what it gives."""
    return ContactPatch(
        name=row.name,
        phone=row.phone if row.phone is not None else UNSET,
        lead_source=row.lead_source if row.lead_source is not None else UNSET,
        custom_fields=row.custom_fields if row.custom_fields is not None else UNSET,
    )
