"""What the import endpoints answer (camelCase on the wire)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from contacts.imports.domain import ImportJob, JobState
from gala.api import ResponseBody


class RejectionOut(ResponseBody):
    line: int = Field(description="The row's line in the file (the header is line 1).")
    reason: str


class ImportJobSummaryOut(ResponseBody):
    id: str
    state: JobState
    rows_read: int = Field(description="Data rows read and applied so far.")
    created: int
    updated: int
    unchanged: int
    rejected: int = Field(description="Every rejected row (the first 100 are listed).")
    percent_done: float = Field(description="How much of the file was read, 0-100.")
    size_bytes: int
    requested_by: str = Field(description="The user who uploaded the file.")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None = Field(description="Why a failed job failed.")

    @classmethod
    def fields_of(cls, job: ImportJob) -> dict[str, object]:
        progress = job.progress
        return {
            "id": job.id,
            "state": job.state,
            "rows_read": progress.rows_read,
            "created": progress.created,
            "updated": progress.updated,
            "unchanged": progress.unchanged,
            "rejected": progress.rejected,
            "percent_done": job.percent_done,
            "size_bytes": job.size_bytes,
            "requested_by": job.user_id,
            "created_at": job.created_at,
            "started_at": job.started_at,
            "finished_at": job.finished_at,
            "error": job.error,
        }

    @classmethod
    def of(cls, job: ImportJob) -> ImportJobSummaryOut:
        return cls.model_validate(cls.fields_of(job))


class ImportJobOut(ImportJobSummaryOut):
    rejections: list[RejectionOut] = Field(
        description="The first rejected rows, in line order, with why."
    )

    @classmethod
    def of(cls, job: ImportJob) -> ImportJobOut:
        rejections = [RejectionOut(line=r.line, reason=r.reason) for r in job.progress.rejections]
        return cls.model_validate({**cls.fields_of(job), "rejections": rejections})
