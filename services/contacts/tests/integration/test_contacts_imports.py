"""CSV imports as jobs (/api/v1/contacts/import, /imports) on the real store and broker.

The upload answers 202 with a queued job; the worker applies it batch by batch, and
the job tells its progress. A job that crashed between a batch's writes and its
progress resumes with every row counted once.
"""

from datetime import UTC, datetime, timedelta

import pytest

from contacts.imports.repository import CHUNKS, JOBS, ImportJobRepository
from contacts.imports.service import ImportRunner
from contacts.leads.repository import ContactRepository
from gala.identity import Role
from gala.testing import eventually

pytestmark = pytest.mark.asyncio(loop_scope="session")

IMPORTS = "/api/v1/contacts/imports"
BATCH_ROWS = 50  # the slow_imports fixture's, and the crash test's


@pytest.fixture
def slow(slow_imports):
    return slow_imports


def guests(rows, *, tag="g", start=1):
    return [f"Guest {n},guest{n}@{tag}.example" for n in range(start, start + rows)]


def counts(job):
    return {k: job[k] for k in ("rowsRead", "created", "updated", "unchanged", "rejected")}


async def test_a_job_reports_its_progress_batch_by_batch_and_ends_with_exact_counts(slow):
    _, admin = await slow.new_venue()
    lines = ["name,email,status", *(f"{g}," for g in guests(560))]
    lines += [f"Renamed {n},GUEST{n}@g.example,PROSPECT" for n in range(1, 21)]  # 562-581
    lines += [f"Guest {n},guest{n}@g.example," for n in range(21, 31)]  # 582-591: as they are
    lines += [f"Bad {n},bad{n}," for n in range(10)]  # 592-601
    response = await slow.upload_csv(admin, "\n".join(lines) + "\n", chunk=4096)
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["state"] == "queued" and job["rowsRead"] == 0 and job["percentDone"] == 0
    assert job["sizeBytes"] == len(("\n".join(lines) + "\n").encode())
    assert response.headers["location"] == f"{IMPORTS}/{job['id']}"

    seen = []

    async def ended():
        current = await slow.import_job(admin, job["id"])
        seen.append(current)
        return current if current["state"] in ("succeeded", "failed") else None

    done = await eventually(ended, timeout=90, interval=0.02)
    assert done["state"] == "succeeded", done
    assert counts(done) == {
        "rowsRead": 600,
        "created": 560,
        "updated": 20,
        "unchanged": 10,
        "rejected": 10,
    }
    assert [r["line"] for r in done["rejections"]] == list(range(592, 602))
    assert done["percentDone"] == 100 and done["error"] is None
    assert done["createdAt"] <= done["startedAt"] <= done["finishedAt"]
    # progress was recorded batch by batch while it ran, and only ever grew
    running = [s for s in seen if s["state"] == "running" and 0 < s["rowsRead"] < 600]
    assert running, "the job was never seen midway"
    assert all(s["rowsRead"] % BATCH_ROWS == 0 for s in running)
    assert all(0 < s["percentDone"] < 100 for s in running)
    rows = [s["rowsRead"] for s in seen]
    assert rows == sorted(rows)
    # the contacts are there; the staged file is gone, the job's record stays
    store = slow.runtime.store
    assert await store["contacts"].count_documents({"venueId": admin.venue_id}) == 560
    renamed = await store["contacts"].find_one({"emailKey": "guest3@g.example"})
    assert (renamed["name"], renamed["status"]) == ("Renamed 3", "PROSPECT")

    # the staged file is removed right after the job's end is recorded (a crash between
    # the two leaves it to the sweep of abandoned uploads)
    async def unstaged() -> bool:
        return await store[CHUNKS].count_documents({"jobId": job["id"]}) == 0

    assert await eventually(unstaged, timeout=10, interval=0.02)
    assert await store[JOBS].count_documents({"_id": job["id"]}) == 1


async def test_other_requests_are_answered_while_a_job_runs(slow):
    """Behaviour, not timing: a request made while the job is midway is answered while
    it is still midway (the service does not hold it until the job ends)."""
    _, admin = await slow.new_venue()
    created = await slow.client.post(
        "/api/v1/contacts",
        json={"name": "Already There", "email": "there@example.com"},
        headers=slow.headers(admin),
    )
    assert created.status_code == 201, created.text
    contact = created.json()["id"]
    body = "name,email\n" + "\n".join(guests(800, tag="busy")) + "\n"
    response = await slow.upload_csv(admin, body, chunk=65536)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]

    async def midway():
        job = await slow.import_job(admin, job_id)
        return job if job["state"] == "running" and 0 < job["rowsRead"] < 800 else None

    await eventually(midway, timeout=60, interval=0.02)
    one = await slow.client.get(f"/api/v1/contacts/{contact}", headers=slow.headers(admin))
    page = await slow.client.get("/api/v1/contacts?limit=5", headers=slow.headers(admin))
    assert one.status_code == 200 and one.json()["name"] == "Already There"
    assert page.status_code == 200
    after = await slow.import_job(admin, job_id)
    assert after["state"] == "running" and after["rowsRead"] < 800  # still midway
    assert (await slow.finished_job(admin, job_id, timeout=90))["created"] == 800


async def test_jobs_are_listed_newest_first_a_page_at_a_time(contacts_worker):
    contacts = contacts_worker
    _, admin = await contacts.new_venue()
    _, sales = await contacts.add_user(admin, Role.SALES)
    first = await contacts.imported(admin, "name,email\nAda,ada@example.com\n")
    second = await contacts.imported(sales, "name,email\nBob,bob@example.com\n")
    response = await contacts.client.get(IMPORTS, headers=contacts.headers(admin))
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [i["id"] for i in items] == [second["id"], first["id"]]
    assert [i["requestedBy"] for i in items] == [sales.user_id, admin.user_id]
    assert "rejections" not in items[0]  # the list is a summary
    assert items[0]["created"] == 1 and items[0]["state"] == "succeeded"
    page = await contacts.client.get(IMPORTS, params={"limit": 1}, headers=contacts.headers(sales))
    assert [i["id"] for i in page.json()["items"]] == [second["id"]]
    rest = await contacts.client.get(
        IMPORTS,
        params={"limit": 1, "cursor": page.json()["nextCursor"]},
        headers=contacts.headers(sales),
    )
    assert [i["id"] for i in rest.json()["items"]] == [first["id"]]
    assert rest.json()["nextCursor"] is None


async def test_another_venues_job_is_not_found_and_not_listed(contacts_worker):
    contacts = contacts_worker
    _, admin = await contacts.new_venue()
    _, other = await contacts.new_venue()
    job = await contacts.imported(admin, "name,email\nAda,ada@example.com\n")
    response = await contacts.client.get(f"{IMPORTS}/{job['id']}", headers=contacts.headers(other))
    assert response.status_code == 404, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:gala:problem:not-found"
    listed = await contacts.client.get(IMPORTS, headers=contacts.headers(other))
    assert listed.json()["items"] == []
    missing = await contacts.client.get(f"{IMPORTS}/nope", headers=contacts.headers(admin))
    assert missing.status_code == 404


@pytest.mark.parametrize("role", [Role.STAFF, Role.CLIENT, Role.PROJECT_MANAGER])
async def test_only_admin_and_sales_see_jobs(contacts_worker, role):
    contacts = contacts_worker
    _, admin = await contacts.new_venue()
    _, sales = await contacts.add_user(admin, Role.SALES)
    _, someone = await contacts.add_user(admin, role)
    job = await contacts.imported(admin, "name,email\nAda,ada@example.com\n")
    assert (await contacts.import_job(sales, job["id"]))["created"] == 1
    for path in (f"{IMPORTS}/{job['id']}", IMPORTS):
        refused = await contacts.client.get(path, headers=contacts.headers(someone))
        assert refused.status_code == 403, refused.text
        assert refused.headers["content-type"] == "application/problem+json"


# --- a crash between a batch's writes and its recorded progress -----------------------


class Crash(Exception):
    pass


class DiesAfterWriting(ImportJobRepository):
    """The worker dies once, after batch ``at``'s contacts were written but before its
    progress was recorded (what a SIGKILL at the worst moment leaves)."""

    def __init__(self, store, at):
        super().__init__(store)
        self.at = at

    async def record(self, job, progress, now, lease):
        if progress.batches == self.at + 1:
            raise Crash()
        return await super().record(job, progress, now, lease)


async def test_a_batch_written_before_a_crash_counts_once_when_the_job_resumes(contacts):
    """``contacts`` serves the API only: the runners here are the only workers."""
    _, admin = await contacts.new_venue()
    store = contacts.runtime.store
    lines = ["name,email,status", *(f"{g}," for g in guests(140, tag="c"))]  # 2-141
    lines += [f"Again {n},guest{n}@c.example,LEAD" for n in (1, 120, 139)]  # 142-144
    lines += ["Bad,nope,"]  # 145
    lines += [f"{g}," for g in guests(20, tag="c", start=141)]  # 146-165
    # batches of 50 records: lines 2-51, 52-101, 102-151 (the one that crashes), 152-165
    response = await contacts.upload_csv(admin, "\n".join(lines), chunk=4096)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    settings = contacts.runtime.settings.model_copy(
        update={"import_batch_rows": BATCH_ROWS, "import_lease_seconds": 2}
    )
    # batch 2 (rows 102-151 of the file) is written, then the worker dies
    dying = ImportRunner(
        DiesAfterWriting(store, at=2),
        ContactRepository(store, contacts.runtime.outbox),
        settings,
    )
    with pytest.raises(Crash):
        await dying.run_once()
    crashed = await contacts.import_job(admin, job_id)
    assert crashed["state"] == "running" and crashed["rowsRead"] == 2 * BATCH_ROWS
    assert await store["contacts"].count_documents({"venueId": admin.venue_id}) == 146
    # another worker: nothing to claim while the lease holds, then it resumes the job
    runner = ImportRunner(
        ImportJobRepository(store), ContactRepository(store, contacts.runtime.outbox), settings
    )
    held = await store[JOBS].find_one({"_id": job_id})
    if held["leaseUntil"] - timedelta(seconds=0.5) > datetime.now(UTC):  # still well held
        assert not await runner.run_once()
    await eventually(runner.run_once, timeout=30, interval=0.2)
    done = await contacts.import_job(admin, job_id)
    assert done["state"] == "succeeded", done
    assert counts(done) == {
        "rowsRead": 164,
        "created": 160,
        "updated": 3,
        "unchanged": 0,
        "rejected": 1,
    }
    assert done["rejections"] == [{"line": 145, "reason": "'nope' is not a valid email address."}]
    # no contact was written twice: every one is at its first version but guest1, which
    # the crashed batch updated once (guest120 and guest139 were made and changed in it)
    documents = await store["contacts"].find({"venueId": admin.venue_id}).to_list()
    assert len(documents) == 160
    versions = {d["emailKey"]: d["version"] for d in documents}
    assert versions.pop("guest1@c.example") == 2
    assert set(versions.values()) == {1}
    names = {d["emailKey"]: (d["name"], d["status"]) for d in documents}
    assert names["guest139@c.example"] == ("Again 139", "LEAD")
    assert (await store[JOBS].find_one({"_id": job_id}))["attempts"] == 2
    assert await eventually(  # removed right after the job's end is recorded
        lambda: _unstaged(store, job_id), timeout=10, interval=0.02
    )


async def _unstaged(store, job_id: str) -> bool:
    return await store[CHUNKS].count_documents({"jobId": job_id}) == 0
