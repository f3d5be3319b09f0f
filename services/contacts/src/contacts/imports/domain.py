"""Import jobs: their states, progress and rules. Pure: no I/O.

``POST /api/v1/contacts/import`` stages the file (in chunks of at most
:data:`STAGING_CHUNK_BYTES`) once its header is known to be one, then queues a job. A
worker holds a job by a lease, applies it batch by batch (``ContactTransfer``) and
records its :class:`Progress` after each batch in one write to the job (the lease
renewed by it). The job's states:

    queued -> running -> succeeded | failed

A job whose worker dies stays ``running`` until its lease runs out; then any worker
takes it over and resumes after the last recorded batch (see ``contacts.leads.transfer``
for why a batch re-applied after a crash still counts each row once).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Final

from contacts.leads.csv_format import Header, InvalidCsv, Record, RecordSplitter
from contacts.leads.domain import ContactError
from contacts.leads.transfer import BatchOutcome, Rejection
from gala.errors import NotFound
from gala.identity import Principal, Role

STAGING_CHUNK_BYTES: Final = 255 * 1024
"""The largest staged piece of an upload (one document each)."""
FEED_BYTES: Final = 16 * 1024
"""How much of a staged chunk the worker parses at a time (the progress's granularity)."""
REJECTIONS_LISTED: Final = 100
"""Every rejected row counts; the first ones are listed, with their line and why."""


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def open(self) -> bool:
        """Still to be run (a worker may claim it once its lease, if any, runs out)."""
        return self in (JobState.QUEUED, JobState.RUNNING)


class ImportJobNotFound(ContactError, NotFound):
    def __init__(self) -> None:
        super().__init__("No such import job in this venue.")


@dataclass
class Progress:
    """What a job did so far: after its last recorded batch."""

    batches: int = 0
    rows_read: int = 0
    """Data records read and applied (each created, updated, unchanged or rejected)."""
    bytes_read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    look_first: bool = False
    """Whether the next batch looks its emails up before writing (see ContactTransfer)."""

    def after(self, batch: BatchOutcome, rows: int, bytes_read: int) -> Progress:
        """The progress once ``batch`` (of ``rows`` records) is applied, ``bytes_read``
        bytes of the file read."""
        listed = list(self.rejections)
        listed += batch.rejections[: max(0, REJECTIONS_LISTED - len(listed))]
        return Progress(
            batches=self.batches + 1,
            rows_read=self.rows_read + rows,
            bytes_read=max(self.bytes_read, bytes_read),
            created=self.created + batch.created,
            updated=self.updated + batch.updated,
            unchanged=self.unchanged + batch.unchanged,
            rejected=self.rejected + len(batch.rejections),
            rejections=listed,
            look_first=batch.look_first,
        )


@dataclass
class ImportJob:
    """One import of a CSV file into a venue's contacts, as the requester may do it."""

    id: str
    venue_id: str
    user_id: str
    role: Role
    """The requester's role when they uploaded: the rows apply as they would for them
    (e.g. a status jump only an ADMIN may make)."""
    size_bytes: int
    chunks: int
    created_at: datetime
    state: JobState = JobState.QUEUED
    progress: Progress = field(default_factory=Progress)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    attempts: int = 0
    """How many times a worker claimed it (a takeover after a crash counts one more)."""
    error: str | None = None
    claim: str | None = None
    """The token of the worker holding it (none when it is not held)."""

    @property
    def principal(self) -> Principal:
        return Principal(user_id=self.user_id, venue_id=self.venue_id, role=self.role)

    @property
    def percent_done(self) -> float:
        """How much of the file was read (100 once it succeeded)."""
        if self.state == JobState.SUCCEEDED:
            return 100.0
        if self.size_bytes == 0:
            return 0.0
        return round(min(100.0, 100.0 * self.progress.bytes_read / self.size_bytes), 1)

    def finished(self, state: JobState, now: datetime, error: str | None = None) -> ImportJob:
        done = copy.copy(self)
        done.state, done.finished_at, done.error = state, now, error
        if state == JobState.SUCCEEDED:
            done.progress = copy.copy(self.progress)
            done.progress.bytes_read = self.size_bytes
        return done


class Staging:
    """An upload cut into staged pieces of at most ``size`` bytes, as it arrives."""

    def __init__(self, size: int = STAGING_CHUNK_BYTES) -> None:
        self._size = size
        self._buffer = bytearray()
        self.total = 0

    def feed(self, data: bytes) -> list[bytes]:
        """The full pieces ``data`` completes (the rest waits for more)."""
        self._buffer += data
        self.total += len(data)
        pieces = []
        while len(self._buffer) >= self._size:
            pieces.append(bytes(self._buffer[: self._size]))
            del self._buffer[: self._size]
        return pieces

    def close(self) -> list[bytes]:
        """The last piece, if anything is left."""
        rest, self._buffer = bytes(self._buffer), bytearray()
        return [rest] if rest else []


class HeaderCheck:
    """Reads an upload's first record only, to refuse a file that is not contacts at once.

    ``feed`` chunks until ``header`` is set; ``close`` at the end of the upload. Raises
    InvalidCsv when the first record is not a header of known columns naming ``name`` and
    ``email``, or (at ``close``) when the file holds no record at all.
    """

    def __init__(self) -> None:
        self._splitter = RecordSplitter()
        self.header: Header | None = None

    def feed(self, chunk: bytes) -> None:
        if self.header is None:
            self._check(self._splitter.feed(chunk))

    def close(self) -> Header:
        if self.header is None:
            self._check(self._splitter.close())
        if self.header is None:
            raise InvalidCsv("The file is empty: its first line must be a header naming columns.")
        return self.header

    def _check(self, records: Sequence[Record]) -> None:
        if records:
            self.header = Header.of(records[0])
