"""Import jobs' rules: staging pieces, the header check, progress and its bounds."""

from datetime import UTC, datetime

import pytest

from contacts.imports.domain import (
    REJECTIONS_LISTED,
    STAGING_CHUNK_BYTES,
    HeaderCheck,
    ImportJob,
    JobState,
    Progress,
    Staging,
)
from contacts.leads.csv_format import InvalidCsv
from contacts.leads.transfer import BatchOutcome, BatchTag, Outcome, Rejection
from gala.identity import Role

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_staging_cuts_an_upload_into_pieces_of_at_most_255_kib_in_order():
    staging = Staging()
    data = bytes(range(256)) * 4000  # ~1 MB
    pieces = []
    for start in range(0, len(data), 70_001):
        pieces += staging.feed(data[start : start + 70_001])
    pieces += staging.close()
    assert all(len(p) <= STAGING_CHUNK_BYTES for p in pieces)
    assert [len(p) for p in pieces[:-1]] == [STAGING_CHUNK_BYTES] * (len(pieces) - 1)
    assert b"".join(pieces) == data
    assert staging.total == len(data)
    assert Staging().close() == []


def test_the_header_check_reads_only_the_first_record_even_split_across_chunks():
    check = HeaderCheck()
    for chunk in (b"\xef\xbb\xbfna", b"me,em", b"ail\nAda,", b"not even checked"):
        check.feed(chunk)
    assert check.header is not None and check.header.columns == ("name", "email")
    assert check.close() is check.header


@pytest.mark.parametrize(
    ("chunks", "reason"),
    [
        ([b""], "The file is empty"),
        ([b"\r\n", b"\r\n"], "The file is empty"),
        ([b"name,phone\n"], "lacks the column(s) email"),
        ([b"name,email,company\nAda,a@b.example,x\n"], "Unknown column(s) 'company'"),
    ],
)
def test_the_header_check_refuses_a_file_that_is_not_contacts(chunks, reason):
    check = HeaderCheck()
    with pytest.raises(InvalidCsv, match=reason.replace("(", r"\(").replace(")", r"\)")):
        for chunk in chunks:
            check.feed(chunk)
        check.close()


def test_a_header_without_a_newline_is_checked_at_the_end():
    check = HeaderCheck()
    check.feed(b"email,name")
    assert check.header is None
    assert check.close().columns == ("email", "name")


def test_progress_adds_each_batch_and_lists_only_the_first_rejections():
    progress = Progress()
    for n in range(3):
        batch = BatchOutcome(
            created=10,
            updated=1,
            unchanged=2,
            rejections=[Rejection(1000 * n + i, "bad") for i in range(60)],
            look_first=n == 1,
        )
        progress = progress.after(batch, 73, bytes_read=100 * (n + 1))
    assert (progress.batches, progress.rows_read, progress.bytes_read) == (3, 219, 300)
    assert (progress.created, progress.updated, progress.unchanged) == (30, 3, 6)
    assert progress.rejected == 180
    assert len(progress.rejections) == REJECTIONS_LISTED
    assert [r.line for r in progress.rejections] == [*range(60), *range(1000, 1040)]
    assert progress.look_first is False  # as the last batch said


def test_percent_done_follows_the_bytes_read_and_is_100_once_succeeded():
    job = ImportJob("j", "v", "u", Role.SALES, size_bytes=400, chunks=1, created_at=NOW)
    assert job.percent_done == 0
    job.progress = Progress(bytes_read=100)
    job.state = JobState.RUNNING
    assert job.percent_done == 25.0
    done = job.finished(JobState.SUCCEEDED, NOW)
    assert (done.percent_done, done.progress.bytes_read, done.finished_at) == (100.0, 400, NOW)
    assert job.progress.bytes_read == 100  # the running job is left as it was
    failed = job.finished(JobState.FAILED, NOW, "why")
    assert (failed.percent_done, failed.error) == (25.0, "why")
    assert job.principal.role == Role.SALES and job.principal.venue_id == "v"
    assert [s for s in JobState if s.open] == [JobState.QUEUED, JobState.RUNNING]


def test_a_batch_mark_reads_back_as_what_its_rows_did():
    tag = BatchTag("job", 7)
    mark = tag.mark([Outcome.CREATED, Outcome.UPDATED], [Rejection(12, "no")])
    assert mark == {
        "job": "job",
        "batch": 7,
        "outcomes": ["created", "updated"],
        "rejections": [{"line": 12, "reason": "no"}],
    }
    assert BatchTag.read(mark) == ([Outcome.CREATED, Outcome.UPDATED], [Rejection(12, "no")])
