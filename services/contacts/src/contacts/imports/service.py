"""Import use cases: stage an upload as a job (ADMIN, SALES), see jobs, run them.

The request (:meth:`ImportService.start`) only stores the file: it reads the first
record to refuse, at once and with nothing stored, a file that is not contacts
(InvalidCsv), stages the bytes in pieces as they arrive, and queues the job once the
last byte is in. The rows are applied by :class:`ImportRunner`, in the worker role
(:func:`process_imports`): it claims one job at a time by a lease, reads the staged
pieces in order, and applies the rows ``import_batch_rows`` at a time through
``ContactTransfer.import_batch`` (create or update by email, in file order, as the
synchronous import did), recording the progress after each batch in one write that
also renews its lease, and pausing between batches so the process keeps answering.

A worker that dies (SIGKILL, a lost machine) stops renewing; once the lease runs out
another worker (or the same one restarted) claims the job and resumes after the last
recorded batch: it reads the file again from the start up to there (parsing only) and
re-applies the one batch that may have been half written in recovery mode, so each
row counts once and no contact is made twice. When the job ends its staged pieces are
deleted; the job's record stays.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta

from contacts.imports.domain import (
    FEED_BYTES,
    HeaderCheck,
    ImportJob,
    ImportJobNotFound,
    JobState,
    Progress,
    Staging,
)
from contacts.imports.repository import ImportJobRepository
from contacts.leads.csv_format import Header, InvalidCsv, Record, RecordSplitter
from contacts.leads.repository import ContactRepository
from contacts.leads.service import CONTACT_ROLES
from contacts.leads.transfer import BatchTag, ContactTransfer
from contacts.settings import ContactsSettings, contacts_settings
from gala.app import Runtime, keep_polling
from gala.identity import Principal, ensure_role
from gala.store import utc_now

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


class ImportService:
    def __init__(self, jobs: ImportJobRepository, clock: Clock = utc_now) -> None:
        self._jobs = jobs
        self._clock = clock

    def check_role(self, principal: Principal) -> None:
        """Before the body is looked at: a 403 says nothing about the file."""
        ensure_role(principal, CONTACT_ROLES, "import contacts")

    async def start(self, principal: Principal, body: AsyncIterator[bytes]) -> ImportJob:
        """Stage the CSV ``body`` and queue its import; the queued job.

        InvalidCsv (and nothing stored) when its first record is not a header of
        contacts or the file is empty; if the upload fails midway, what was staged
        of it is deleted.
        """
        self.check_role(principal)
        job_id = uuid.uuid4().hex
        check, staging = HeaderCheck(), Staging()
        held: list[bytes] = []  # pieces until the header is known to be one
        staged = 0

        async def stage(pieces: list[bytes]) -> None:
            nonlocal staged
            for piece in pieces:
                await self._jobs.stage(job_id, staged, piece, self._clock())
                staged += 1

        try:
            async for chunk in body:
                check.feed(chunk)
                pieces = staging.feed(chunk)
                if check.header is None:
                    held += pieces
                    continue
                await stage([*held, *pieces])
                held = []
            check.close()
            await stage([*held, *staging.close()])
            job = ImportJob(
                id=job_id,
                venue_id=principal.venue_id,
                user_id=principal.user_id,
                role=principal.role,
                size_bytes=staging.total,
                chunks=staged,
                created_at=self._clock(),
            )
            await self._jobs.add(job)
        except BaseException:
            if staged:
                await asyncio.shield(self._jobs.drop_staged(job_id))
            raise
        log.info(
            "contacts import queued",
            extra={"venue_id": job.venue_id, "job_id": job.id, "size_bytes": job.size_bytes},
        )
        return job

    async def get(self, principal: Principal, job_id: str) -> ImportJob:
        ensure_role(principal, CONTACT_ROLES, "see imports")
        job = await self._jobs.get(principal.venue_id, job_id)
        if job is None:
            raise ImportJobNotFound()
        return job

    async def list(
        self, principal: Principal, limit: int, cursor: str | None
    ) -> tuple[list[ImportJob], str | None]:
        ensure_role(principal, CONTACT_ROLES, "see imports")
        return await self._jobs.page(principal.venue_id, limit, cursor)


class LeaseLost(Exception):
    """The job's lease ran out and another worker holds it now: this one stops."""


class ImportRunner:
    """Claims import jobs and applies them, one at a time, batch by batch."""

    def __init__(
        self,
        jobs: ImportJobRepository,
        contacts: ContactRepository,
        settings: ContactsSettings,
        clock: Clock = utc_now,
    ) -> None:
        self._jobs = jobs
        self._transfer = ContactTransfer(contacts, clock)
        self._settings = settings
        self._clock = clock

    @property
    def _lease(self) -> timedelta:
        return timedelta(seconds=self._settings.import_lease_seconds)

    async def run_once(self) -> bool:
        """Run one claimable job to its end; ``False`` when there was none (then what
        crashed runs left staged is cleaned up)."""
        job = await self._jobs.claim(self._clock(), self._lease)
        if job is None:
            await self._clean_up()
            return False
        about = {"venue_id": job.venue_id, "job_id": job.id, "attempt": job.attempts}
        if job.attempts > self._settings.import_max_attempts:
            await self._end(job, JobState.FAILED, "attempts exhausted (its workers stopped)")
            return True
        log.info("contacts import running", extra={**about, "resume_after": job.progress.rows_read})
        try:
            await self._run(job)
        except LeaseLost:
            log.warning("contacts import: lease lost, another worker resumes it", extra=about)
        except InvalidCsv as exc:  # checked at upload: only a changed rule would get here
            await self._end(job, JobState.FAILED, exc.detail)
        return True

    async def _run(self, job: ImportJob) -> None:
        principal = job.principal
        progress = job.progress
        skip = progress.rows_read  # applied by an earlier run: read past them
        recover = True  # the first batch of a run may have been written before a crash
        splitter = RecordSplitter()
        header: Header | None = None
        batch: list[Record] = []
        read = 0

        async def apply(header: Header, records: list[Record]) -> Progress:
            nonlocal recover
            outcome = await self._transfer.import_batch(
                principal,
                header,
                records,
                look_first=progress.look_first,
                tag=BatchTag(job.id, progress.batches),
                recover=recover,
            )
            recover = False
            return progress.after(outcome, len(records), read)

        for n in range(job.chunks):
            data = await self._jobs.chunk(job.id, n)
            if data is None:
                await self._end(job, JobState.FAILED, "the staged file is incomplete")
                return
            for start in range(0, len(data), FEED_BYTES):
                read += min(FEED_BYTES, len(data) - start)
                for record in splitter.feed(data[start : start + FEED_BYTES]):
                    if header is None:
                        header = Header.of(record)
                    elif skip:
                        skip -= 1
                    else:
                        batch.append(record)
                        if len(batch) >= self._settings.import_batch_rows:
                            progress = await apply(header, batch)
                            batch = []
                            await self._record(job, progress)
                            await asyncio.sleep(self._settings.import_batch_pause_seconds)
                if splitter.stopped:
                    break
                if skip:
                    await asyncio.sleep(0)  # reading past what was applied: still yield
            if splitter.stopped:
                break
        for record in splitter.close():
            if header is None:
                header = Header.of(record)
            elif skip:
                skip -= 1
            else:
                batch.append(record)
        if header is None:
            raise InvalidCsv("The file is empty: its first line must be a header naming columns.")
        if batch:
            progress = await apply(header, batch)
        job.progress = progress
        await self._end(job, JobState.SUCCEEDED)

    async def _record(self, job: ImportJob, progress: Progress) -> None:
        if not await self._jobs.record(job, progress, self._clock(), self._lease):
            raise LeaseLost()
        job.progress = progress

    async def _end(self, job: ImportJob, state: JobState, error: str | None = None) -> None:
        done = job.finished(state, self._clock(), error)
        if not await self._jobs.finish(done):
            raise LeaseLost()
        await self._jobs.unstage(job.id)
        progress = done.progress
        log.log(
            logging.INFO if state == JobState.SUCCEEDED else logging.ERROR,
            "contacts import %s",
            state.value,
            extra={
                "venue_id": job.venue_id,
                "job_id": job.id,
                "rows": progress.rows_read,
                "created_count": progress.created,
                "updated_count": progress.updated,
                "unchanged_count": progress.unchanged,
                "rejected_count": progress.rejected,
                "error": error,
            },
        )

    async def _clean_up(self) -> None:
        for job_id in await self._jobs.ended_but_staged():
            await self._jobs.unstage(job_id)
        before = self._clock() - timedelta(hours=self._settings.import_abandoned_upload_hours)
        for job_id in await self._jobs.abandoned_uploads(before):
            log.warning("contacts import: an abandoned upload deleted", extra={"job_id": job_id})
            await self._jobs.drop_staged(job_id)


async def process_imports(runtime: Runtime) -> None:
    """The worker loop: run queued import jobs (and take over those whose worker died)."""
    settings = contacts_settings(runtime.settings)
    runner = ImportRunner(
        ImportJobRepository(runtime.store),
        ContactRepository(runtime.store, runtime.outbox),
        settings,
    )
    await keep_polling(runner.run_once, settings.import_poll_interval_seconds, "contacts imports")
