"""Import jobs with real contacts processes: a SIGKILLed worker's job resumes, and
``gala contacts import`` follows a job to its end.

The worker runs as ``python -m contacts --role worker`` on the database of the
in-process API (the ``contacts`` fixture, which runs no jobs itself).
"""

import asyncio
import os
import re

import httpx
import pytest

from contacts.imports.repository import CHUNKS, JOBS
from gala.identity import IDENTITY_HEADER, InternalTokens, Principal, Role
from gala.settings import Settings
from gala.store import Store
from gala.testing import GALA_CLI, ServiceProcess, eventually, free_port, gala_cli, unique_name

pytestmark = pytest.mark.asyncio(loop_scope="session")

IMPORTS = "/api/v1/contacts/imports"
ROWS = 600
BATCH_ROWS = 50
LEASE_SECONDS = 3


def worker_env(infra, database, **extra):
    return {
        **os.environ,
        "GALA_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
        "GALA_MONGO_URL": infra.mongo_url,
        "GALA_MONGO_DATABASE": database,
        "GALA_CONSUMER_GROUP": unique_name("gala.contacts.imports-"),
        "GALA_CONSUMER_START_FROM": "latest",
        "GALA_IMPORT_BATCH_ROWS": str(BATCH_ROWS),
        "GALA_IMPORT_BATCH_PAUSE_SECONDS": "0.1",
        "GALA_IMPORT_LEASE_SECONDS": str(LEASE_SECONDS),
        "GALA_IMPORT_POLL_INTERVAL_SECONDS": "0.2",
        **extra,
    }


async def test_a_job_whose_worker_is_killed_resumes_and_applies_every_row_once(
    contacts, infra, tmp_path
):
    _, admin = await contacts.new_venue()
    store = contacts.runtime.store
    lines = ["name,email,status"]
    lines += [f"Guest {n},guest{n}@k.example," for n in range(1, ROWS + 1)]
    # every 10th guest again, later in the file: each such row is one update
    lines += [f"Guest {n} again,guest{n}@k.example,PROSPECT" for n in range(10, ROWS + 1, 10)]
    lines += [f"Bad {n},bad{n}," for n in range(7)]
    response = await contacts.upload_csv(admin, "\n".join(lines) + "\n", chunk=65536)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]

    port = free_port()
    worker = ServiceProcess(
        "contacts",
        worker_env(infra, contacts.runtime.settings.mongo_database, GALA_CONTACTS_PORT=str(port)),
        port,
        args=("--role", "worker"),
        log_file=tmp_path / "worker.log",
    )
    try:
        await worker.start()

        async def midway():
            job = await contacts.import_job(admin, job_id)
            return job if job["rowsRead"] >= 200 else None

        await eventually(midway, timeout=120, interval=0.05)
        assert await worker.kill() == -9  # SIGKILL, mid-import, holding the lease
        killed = await contacts.import_job(admin, job_id)
        assert killed["state"] == "running"
        assert killed["rowsRead"] < len(lines) - 1, "the job ended before the kill"
        await asyncio.sleep(0.5)  # nothing moves while no worker runs
        assert (await contacts.import_job(admin, job_id))["rowsRead"] == killed["rowsRead"]

        await worker.start()  # the restarted worker takes the job over once the lease ends
        done = await contacts.finished_job(admin, job_id, timeout=180)
    finally:
        if worker.alive:
            await worker.stop()
    assert done["state"] == "succeeded", (done, worker.output()[-3000:])
    updates = ROWS // 10
    assert {k: done[k] for k in ("rowsRead", "created", "updated", "unchanged", "rejected")} == {
        "rowsRead": ROWS + updates + 7,
        "created": ROWS,
        "updated": updates,
        "unchanged": 0,
        "rejected": 7,
    }
    documents = await store["contacts"].find({"venueId": admin.venue_id}).to_list()
    assert len(documents) == ROWS
    # every row applied once: a contact made once (version 1), and updated once (2)
    versions = {d["emailKey"]: d["version"] for d in documents}
    again = {f"guest{n}@k.example" for n in range(10, ROWS + 1, 10)}
    assert {e for e, v in versions.items() if v == 2} == again
    assert {v for e, v in versions.items() if e not in again} == {1}
    assert (await store[JOBS].find_one({"_id": job_id}))["attempts"] == 2
    assert await eventually(  # removed right after the job's end is recorded
        lambda: _unstaged(store, job_id), timeout=10, interval=0.02
    )


async def test_gala_contacts_import_follows_the_job_with_a_progress_bar(infra, tmp_path):
    port = free_port()
    database = unique_name("gala_contacts_cli_")
    env = worker_env(
        infra,
        database,
        GALA_CONTACTS_PORT=str(port),
        GALA_CONTACTS_URL=f"http://127.0.0.1:{port}",
        GALA_IMPORT_BATCH_ROWS="20",
    )
    venue = unique_name("venue-")
    csv_file = tmp_path / "contacts.csv"
    rows = [f"Guest {n},guest{n}@cli.example" for n in range(1, 101)]
    csv_file.write_text("name,email\n" + "\n".join([*rows, "Bad,nope"]) + "\n")
    service = ServiceProcess("contacts", env, port, log_file=tmp_path / "contacts.log")
    try:
        await service.start()
        await gala_cli(
            env, "users", "add", "--venue", venue, "--email", "sales@cli.example",
            "--role", "SALES", "--subject", unique_name("sub-"),
        )  # fmt: skip
        await gala_cli(
            env, "users", "add", "--venue", venue, "--email", "staff@cli.example",
            "--role", "STAFF", "--subject", unique_name("sub-"),
        )  # fmt: skip
        cli = await asyncio.create_subprocess_exec(
            str(GALA_CLI), "contacts", "import", str(csv_file), "--venue", venue,
            "--email", "sales@cli.example", "--interval", "0.05",
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(cli.communicate(), 120)
        assert cli.returncode == 0, err.decode()
        summary, progress = out.decode(), err.decode()
        assert re.search(
            r"import [0-9a-f]{32} succeeded: 101 rows read, 100 created, 0 updated,"
            r" 0 unchanged, 1 rejected",
            summary,
        ), summary
        assert "line 102: 'nope' is not a valid email address." in summary
        bars = progress.strip().splitlines()
        assert bars[-1].startswith("[" + "#" * 30 + "] 100.0%  101 rows  succeeded"), progress
        assert bars[0].endswith("queued")

        # --no-follow: the job's id, at once; the job runs on
        quick = await gala_cli(
            env, "contacts", "import", str(csv_file), "--venue", venue,
            "--email", "sales@cli.example", "--no-follow",
        )  # fmt: skip
        assert re.fullmatch(r"[0-9a-f]{32}", quick), quick
        made = await gala_cli(env, "users", "add", "--venue", venue, "--email",
                              "admin@cli.example", "--role", "ADMIN",
                              "--subject", unique_name("sub-"))  # fmt: skip
        admin = Principal(
            user_id=re.search(r'"id": "([^"]+)"', made).group(1), venue_id=venue, role=Role.ADMIN
        )
        secret = Settings().internal_token_secret.get_secret_value()  # dev mode's, shared
        headers = {IDENTITY_HEADER: InternalTokens(secret).issue(admin)}
        async with httpx.AsyncClient(base_url=service.url, headers=headers) as http:

            async def ended():
                job = (await http.get(f"{IMPORTS}/{quick}")).json()
                return job if job["state"] == "succeeded" else None

            again = await eventually(ended, timeout=60)
        assert (again["created"], again["unchanged"], again["rejected"]) == (0, 100, 1)

        # a user who may not import: the CLI says why, and fails
        refused = await asyncio.create_subprocess_exec(
            str(GALA_CLI), "contacts", "import", str(csv_file), "--venue", venue,
            "--email", "staff@cli.example",
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await asyncio.wait_for(refused.communicate(), 60)
        assert refused.returncode == 1
        assert "the import was refused: 403" in err.decode()
    finally:
        await service.stop()
        store = Store(infra.mongo_url, database)
        await store.client.drop_database(database)
        await store.close()


async def _unstaged(store, job_id: str) -> bool:
    return await store[CHUNKS].count_documents({"jobId": job_id}) == 0
