"""The only module that speaks to the store about import jobs and their staged files.

- ``contact_imports``: one document per job (its progress flat in it, so one
  ``$set`` records a batch's outcome); a worker holds a job by ``claim`` (a token) and
  ``leaseUntil``: every write of the worker is conditional on its token, so a worker
  whose lease ran out (and whose job another took over) changes nothing any more.
- ``contact_import_chunks``: the staged upload, ``<job id>:<n>`` for its ``n``-th piece
  (each read alone, by ``_id``: only one is in memory at a time); deleted when the job
  ends (the job's ``staged`` says whether some may be left, e.g. after a crash).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection

from contacts.imports.domain import ImportJob, JobState, Progress
from contacts.leads.transfer import Rejection
from gala.identity import Role, venue_scoped
from gala.store import Document, Index, PageRequest, Store, find_page
from gala.values import as_utc

JOBS = "contact_imports"
CHUNKS = "contact_import_chunks"
LISTING: Sequence[tuple[str, int]] = [("createdAt", DESCENDING)]

INDEXES: Sequence[Index] = (
    Index(JOBS, [("venueId", ASCENDING), ("createdAt", ASCENDING), ("_id", ASCENDING)]),
    Index(JOBS, [("open", ASCENDING), ("leaseUntil", ASCENDING)]),
    Index(JOBS, [("staged", ASCENDING), ("open", ASCENDING)]),
    Index(CHUNKS, [("jobId", ASCENDING)]),
    Index(CHUNKS, [("n", ASCENDING), ("stagedAt", ASCENDING)]),
)

_LISTED = {"rejections": 0}


def chunk_id(job_id: str, n: int) -> str:
    return f"{job_id}:{n:06d}"


def _progress_fields(progress: Progress) -> Document:
    return {
        "batches": progress.batches,
        "rowsRead": progress.rows_read,
        "bytesRead": progress.bytes_read,
        "created": progress.created,
        "updated": progress.updated,
        "unchanged": progress.unchanged,
        "rejected": progress.rejected,
        "rejections": [{"line": r.line, "reason": r.reason} for r in progress.rejections],
        "lookFirst": progress.look_first,
    }


def to_document(job: ImportJob) -> Document:
    return {
        "_id": job.id,
        "venueId": job.venue_id,
        "userId": job.user_id,
        "role": job.role.value,
        "sizeBytes": job.size_bytes,
        "chunks": job.chunks,
        "state": job.state.value,
        "open": job.state.open,
        "staged": True,
        "createdAt": job.created_at,
        "startedAt": job.started_at,
        "finishedAt": job.finished_at,
        "updatedAt": job.created_at,
        "leaseUntil": job.created_at,
        "claim": job.claim,
        "attempts": job.attempts,
        "error": job.error,
        **_progress_fields(job.progress),
    }


def from_document(document: Mapping[str, Any]) -> ImportJob:
    created = as_utc(document["createdAt"])
    assert created is not None
    return ImportJob(
        id=str(document["_id"]),
        venue_id=str(document["venueId"]),
        user_id=str(document["userId"]),
        role=Role(document["role"]),
        size_bytes=int(document["sizeBytes"]),
        chunks=int(document["chunks"]),
        created_at=created,
        state=JobState(document["state"]),
        progress=Progress(
            batches=int(document.get("batches", 0)),
            rows_read=int(document.get("rowsRead", 0)),
            bytes_read=int(document.get("bytesRead", 0)),
            created=int(document.get("created", 0)),
            updated=int(document.get("updated", 0)),
            unchanged=int(document.get("unchanged", 0)),
            rejected=int(document.get("rejected", 0)),
            rejections=[
                Rejection(int(r["line"]), str(r["reason"])) for r in document.get("rejections", [])
            ],
            look_first=bool(document.get("lookFirst", False)),
        ),
        started_at=as_utc(document.get("startedAt")),
        finished_at=as_utc(document.get("finishedAt")),
        attempts=int(document.get("attempts", 0)),
        error=document.get("error"),
        claim=document.get("claim"),
    )


class ImportJobRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def _jobs(self) -> AsyncCollection[Document]:
        return self._store[JOBS]

    @property
    def _chunks(self) -> AsyncCollection[Document]:
        return self._store[CHUNKS]

    # --- the upload --------------------------------------------------------------------

    async def stage(self, job_id: str, n: int, data: bytes, now: datetime) -> None:
        await self._chunks.insert_one(
            {"_id": chunk_id(job_id, n), "jobId": job_id, "n": n, "data": data, "stagedAt": now}
        )

    async def add(self, job: ImportJob) -> None:
        await self._jobs.insert_one(to_document(job))

    async def unstage(self, job_id: str) -> None:
        """Delete a job's staged pieces; the job (if any) says none are left."""
        await self._chunks.delete_many({"jobId": job_id})
        await self._jobs.update_one({"_id": job_id}, {"$set": {"staged": False}})

    # --- reading -----------------------------------------------------------------------

    async def get(self, venue_id: str, job_id: str) -> ImportJob | None:
        document = await self._jobs.find_one(venue_scoped(venue_id, {"_id": job_id}))
        return from_document(document) if document is not None else None

    async def page(
        self, venue_id: str, limit: int, cursor: str | None
    ) -> tuple[list[ImportJob], str | None]:
        """The venue's jobs, newest first (their rejections not read)."""
        page = await find_page(
            self._jobs,
            venue_scoped(venue_id),
            PageRequest(sort=LISTING, limit=limit, cursor=cursor),
            _LISTED,
        )
        return [from_document(d) for d in page.items], page.next_cursor

    # --- the worker --------------------------------------------------------------------

    async def claim(self, now: datetime, lease: timedelta) -> ImportJob | None:
        """Take the open job whose lease ran out longest ago (a queued one's is its
        creation) for ``lease``, counting one more attempt."""
        token = uuid.uuid4().hex
        document = await self._jobs.find_one_and_update(
            {"open": True, "leaseUntil": {"$lte": now}},
            {
                "$set": {
                    "claim": token,
                    "leaseUntil": now + lease,
                    "state": JobState.RUNNING.value,
                    "updatedAt": now,
                },
                "$inc": {"attempts": 1},
            },
            sort=[("leaseUntil", ASCENDING)],
            return_document=ReturnDocument.AFTER,
        )
        if document is None:
            return None
        if document.get("startedAt") is None:
            await self._jobs.update_one(
                {"_id": document["_id"], "claim": token}, {"$set": {"startedAt": now}}
            )
            document["startedAt"] = now
        return from_document(document)

    async def chunk(self, job_id: str, n: int) -> bytes | None:
        document = await self._chunks.find_one({"_id": chunk_id(job_id, n)}, {"data": 1})
        return bytes(document["data"]) if document is not None else None

    async def record(
        self, job: ImportJob, progress: Progress, now: datetime, lease: timedelta
    ) -> bool:
        """Record a batch's progress and renew the lease, if the job is still ``job``'s
        claim's (``False``: the lease ran out and another worker took it)."""
        result = await self._jobs.update_one(
            {"_id": job.id, "claim": job.claim},
            {"$set": {**_progress_fields(progress), "leaseUntil": now + lease, "updatedAt": now}},
        )
        return result.matched_count == 1

    async def finish(self, job: ImportJob) -> bool:
        """Record that ``job`` ended (its state, error and last progress as it says), if
        the job is still its claim's; its staged pieces are still to be deleted."""
        assert job.finished_at is not None
        fields: Document = {
            **_progress_fields(job.progress),
            "state": job.state.value,
            "open": False,
            "finishedAt": job.finished_at,
            "updatedAt": job.finished_at,
            "error": job.error,
            "claim": None,
        }
        result = await self._jobs.update_one({"_id": job.id, "claim": job.claim}, {"$set": fields})
        return result.matched_count == 1

    async def ended_but_staged(self, limit: int = 10) -> list[str]:
        """Jobs that ended while some of their pieces may still be staged (a crash)."""
        cursor = self._jobs.find({"staged": True, "open": False}, {"_id": 1}).limit(limit)
        return [str(document["_id"]) async for document in cursor]

    async def abandoned_uploads(self, before: datetime, limit: int = 10) -> list[str]:
        """Uploads staged before ``before`` that never became a job (the request died)."""
        cursor = self._chunks.find({"n": 0, "stagedAt": {"$lt": before}}, {"jobId": 1}).limit(
            limit * 4
        )
        candidates = [str(document["jobId"]) async for document in cursor]
        if not candidates:
            return []
        known = {
            str(document["_id"])
            async for document in self._jobs.find({"_id": {"$in": candidates}}, {"_id": 1})
        }
        return [job_id for job_id in candidates if job_id not in known][:limit]

    async def drop_staged(self, job_id: str) -> None:
        """Delete staged pieces of an upload that has no job."""
        await self._chunks.delete_many({"jobId": job_id})
