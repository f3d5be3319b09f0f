"""Schemathesis against the whole system, through the gateway only (issue 13).

Contacts, pipeline, projects, chat, billing and the gateway (dev mode) run as processes on
the real broker and store, each service with a database and a consumer group of its own
(each group starts at the end of its topics); billing's Stripe is stripe-mock, as under
``make dev``. A fresh venue gets an ADMIN with ``gala users add``, who logs in with
``gala dev-token``. Then schemathesis (its CLI, ``st run``, as a child process) reads the
gateway's merged OpenAPI at ``/api/v1/openapi.json`` and sends what it generates from it
(schema examples; the coverage phase's boundary, invalid and unexpected values, methods
and bodies; random positive and negative cases; stateful sequences through inferred
links) to the gateway, once with the ADMIN's bearer token and once with no token at all.

Every answer must be as documented:

- ``not_a_server_error``: no 5xx, except a 503/504 (an upstream down: it should not
  happen here), and those only where the operation documents them (next check);
- ``status_code_conformance``: the status code is one the operation declares;
- ``content_type_conformance``: so is the content type (an error is
  ``application/problem+json`` only where that is what the operation declares);
- ``response_schema_conformance``: the body matches the declared schema.

Nor may a process log a traceback meanwhile, or die.

Bounded: a fixed seed, ``MAX_EXAMPLES`` random cases per operation and phase, one
worker, and a time budget per run (``RUN_BUDGET_SECONDS``); a run still going at the end
of its budget is interrupted (as Ctrl-C does), what it found is reported, and the test
fails saying so. Only 127.0.0.1 is ever spoken to: schemathesis gets the gateway's
address, no proxy and no redirects, and the test checks that every request it recorded
went to the gateway; the processes get no outside service (no JWKS URL, no SMTP host, no
S3, no OTLP endpoint; Stripe is stripe-mock; Meta's Graph API is a closed local port).

Select it with ``-k api_fuzz`` (or by path); it carries the ``integration`` marker. Each
run's files (schemathesis's own output, its NDJSON events, JSON summary and JUnit report)
are kept in the test's ``tmp_path``, the processes' logs beside them; a failure's message
groups the distinct failures by operation, check, status and problem type, each with its
shortest reproduction (``curl``; ``$TOKEN`` is the ADMIN's token), and lists the
tracebacks the processes logged.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shlex
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from gala.settings import Settings
from gala.testing import ServiceProcess, unique_name
from tests.e2e.system import REPO, System, whole_system

pytestmark = pytest.mark.integration

SEED = 13
MAX_EXAMPLES = 5
RUN_BUDGET_SECONDS = 90.0
"""Per run (measured: 40-50 s with a token, 15 s without, on a loaded 2-core machine); the
system's start (about 20 s) and two runs stay within about four minutes."""
REQUEST_TIMEOUT_SECONDS = 20.0
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)
# 503/504 mean an upstream is down: not a server error for this check when documented
# (status_code_conformance still fails an undocumented one).
SCHEMATHESIS_TOML = """\
[checks.not_a_server_error]
expected-statuses = ["2xx", "3xx", "4xx", "503", "504"]
"""
PROXIES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@dataclass
class Target:
    """The running system and the fresh venue's ADMIN whose token the first run uses."""

    system: System
    token: str

    @property
    def gateway(self) -> str:
        return self.system.gateway

    @property
    def processes(self) -> dict[str, ServiceProcess]:
        return self.system.processes

    @property
    def logs(self) -> Path:
        return self.system.logs


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def system(
    infra: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Target]:
    """Every service and the gateway as processes, and a fresh venue's ADMIN."""
    logs = tmp_path_factory.mktemp("api-fuzz")
    # one caller sends thousands of requests: the edge's and the public forms' per-caller
    # limits would answer most of them 429 and hide everything else
    limits = {
        "GALA_RATE_LIMIT_PER_MINUTE": "1000000",
        "GALA_RATE_LIMIT_BURST": "100000",
        "GALA_INTAKE_RATE_LIMIT_PER_MINUTE": "1000000",
    }
    async with whole_system(infra, logs, extra_env=limits) as running:
        _, _, token = await running.add_user(unique_name("venue-"), "ADMIN", name="Owner")
        yield Target(running, token)


# --- running schemathesis ----------------------------------------------------------------


@dataclass
class Failure:
    """One distinct failure: an operation, a check, a status; its shortest reproduction."""

    operation: str
    check: str
    status: int | None
    code: str
    title: str
    message: str
    scenario: str
    problem: str
    reproduction: str
    count: int = 1


@dataclass
class Outcome:
    """What one ``st run`` did and found, read from its NDJSON events and JSON report."""

    exit_code: int | None
    interrupted: bool
    seconds: float
    summary: dict[str, Any] = field(default_factory=dict)
    operations: set[str] = field(default_factory=set)
    cases: int = 0
    requests: int = 0
    urls_elsewhere: list[str] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    failures: dict[tuple[str, str, int | None, str], Failure] = field(default_factory=dict)
    errors: dict[tuple[str, str], str] = field(default_factory=dict)
    run_errors: list[str] = field(default_factory=list)
    crashes: dict[tuple[str, str, str], int] = field(default_factory=dict)


def st_run(gateway: str, workdir: Path, headers: dict[str, str]) -> list[str]:
    """The ``st run`` command line; its configuration and reports go to ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "schemathesis.toml"
    config.write_text(SCHEMATHESIS_TOML)
    # fmt: off
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "--no-color",
        "run", f"{gateway}/api/v1/openapi.json", "--url", gateway,
        "--checks", ",".join(CHECKS),
        "--seed", str(SEED), "--max-examples", str(MAX_EXAMPLES), "--workers", "1",
        "--continue-on-failure", "--suppress-health-check", "all",
        "--generation-database", "none",
        # "without a token" means no Authorization header at all, not a generated one
        "--generation-with-security-parameters", "false",
        "--request-timeout", str(REQUEST_TIMEOUT_SECONDS), "--max-redirects", "0",
        "--wait-for-schema", "30",
        "--report", "ndjson,json,junit", "--report-dir", str(workdir),
        "--report-ndjson-path", str(workdir / "events.ndjson"),
        "--report-json-path", str(workdir / "report.json"),
    ]
    # fmt: on
    for name, value in headers.items():
        command += ["--header", f"{name}: {value}"]
    return command


async def schemathesis(gateway: str, workdir: Path, headers: dict[str, str]) -> Outcome:
    """``st run`` against the gateway's merged document; interrupted at the run's budget."""
    command = st_run(gateway, workdir, headers)
    env = {k: v for k, v in os.environ.items() if k not in PROXIES}
    env |= {"NO_PROXY": "*", "no_proxy": "*"}
    started = time.monotonic()
    with (workdir / "output.txt").open("wb") as output:
        child = await asyncio.create_subprocess_exec(
            *command, cwd=workdir, env=env, stdout=output, stderr=asyncio.subprocess.STDOUT
        )
    interrupted = False
    try:
        await asyncio.wait_for(child.wait(), RUN_BUDGET_SECONDS)
    except TimeoutError:
        # as Ctrl-C does: schemathesis stops, reports what it found and writes its files
        interrupted = True
        child.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(child.wait(), 30)
        except TimeoutError:
            child.kill()
    finally:
        if child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                child.kill()
            await child.wait()
    return collect(
        Outcome(child.returncode, interrupted, time.monotonic() - started), workdir, gateway
    )


def collect(outcome: Outcome, workdir: Path, gateway: str) -> Outcome:
    summary, events = workdir / "report.json", workdir / "events.ndjson"
    if summary.exists():
        outcome.summary = json.loads(summary.read_text())
    if events.exists():
        read_events(events, gateway, outcome)
    return outcome


def read_events(path: Path, gateway: str, outcome: Outcome) -> None:
    with path.open(errors="replace") as lines:
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # the last line of an interrupted run may be cut short
            for name, event in record.items():
                if name == "ScenarioFinished":
                    read_scenario(event.get("recorder") or {}, gateway, outcome)
                elif name == "NonFatalError":
                    value = event.get("value") or {}
                    text = f"{value.get('type', '')}: {value.get('message', '')}"[:400]
                    key = (str(event.get("label") or "?"), text.splitlines()[0] if text else "")
                    outcome.errors.setdefault(key, text)
                elif name == "FatalError":
                    outcome.run_errors.append(json.dumps(event)[:2000])


def read_scenario(recorder: dict[str, Any], gateway: str, outcome: Outcome) -> None:
    label = str(recorder.get("label") or "?")
    if label.split(" ", 1)[0].isupper():
        outcome.operations.add(label)  # else a stateful scenario ("Stateful tests")
    cases: dict[str, Any] = recorder.get("cases") or {}
    interactions: dict[str, Any] = recorder.get("interactions") or {}
    outcome.cases += len(cases)
    for interaction in interactions.values():
        outcome.requests += 1
        uri = str((interaction.get("request") or {}).get("uri", ""))
        if not uri.startswith(gateway + "/"):
            outcome.urls_elsewhere.append(uri)
        status = (interaction.get("response") or {}).get("status_code")
        if isinstance(status, int):
            outcome.statuses[status] = outcome.statuses.get(status, 0) + 1
    for case_id, checks in (recorder.get("checks") or {}).items():
        for check in checks:
            if str(check.get("status", "")).lower() != "failure":
                continue
            info = (check.get("failure_info") or {}).get("failure") or {}
            interaction = interactions.get(case_id) or {}
            status = (interaction.get("response") or {}).get("status_code")
            response = interaction.get("response") or {}
            case = (cases.get(case_id) or {}).get("value") or {}
            scenario = ((case.get("meta") or {}).get("phase") or {}).get("data") or {}
            failure = Failure(
                operation=str(info.get("operation") or label),
                check=str(check.get("name", "?")),
                status=status,
                code=str(info.get("code", "")),
                title=str(info.get("title", "")),
                message=" / ".join(str(info.get("message", "")).splitlines())[:300],
                scenario="; ".join(str(scenario.get("description", "")).splitlines()),
                problem=problem_of(response),
                reproduction=curl(interaction.get("request") or {}),
            )
            key = (failure.operation, failure.check, status, failure.problem.split(" ", 1)[0])
            known = outcome.failures.get(key)
            if known is None:
                outcome.failures[key] = failure
                continue
            known.count += 1
            if len(failure.reproduction) < len(known.reproduction):
                failure.count = known.count
                outcome.failures[key] = failure  # the shortest reproduction is kept


def problem_of(response: dict[str, Any]) -> str:
    """The answer's problem ``type`` and detail, if it is a problem document."""
    content = response.get("content")
    if not isinstance(content, dict) or "$base64" not in content:
        return ""
    try:
        problem = json.loads(base64.b64decode(content["$base64"]))
    except ValueError:
        return ""
    if not isinstance(problem, dict) or "type" not in problem:
        return ""
    return f"{problem['type']} ({str(problem.get('detail', ''))[:100]})"


def curl(request: dict[str, Any]) -> str:
    """A ``curl`` for a recorded request (the ADMIN's token shown as ``$TOKEN``)."""
    if not request:
        return "(no request recorded)"
    parts = ["curl", "-X", str(request.get("method", "GET")), shlex.quote(str(request["uri"]))]
    for name, values in (request.get("headers") or {}).items():
        for value in values if isinstance(values, list) else [values]:
            if name.lower() == "authorization":
                parts += ["-H", '"Authorization: Bearer $TOKEN"']
            else:
                parts += ["-H", shlex.quote(f"{name}: {value}")]
    body = request.get("body")
    if isinstance(body, dict) and "$base64" in body:
        raw = base64.b64decode(body["$base64"])
        text = raw.decode(errors="replace")
        if raw == text.encode() and text.isprintable() and len(text) <= 300:
            parts += ["--data-binary", shlex.quote(text)]
        else:  # not printable UTF-8, or long: the exact bytes
            parts += ["--data-binary", f"@<(echo {body['$base64'][:400]} | base64 -d)"]
    elif body is not None:
        parts += ["--data-binary", shlex.quote(str(body))]
    return " ".join(parts)


def report(caller: str, outcome: Outcome, workdir: Path) -> str:
    totals = outcome.summary.get("operations") or {}
    test_cases = outcome.summary.get("test_cases") or {}
    ended = "interrupted at its budget" if outcome.interrupted else "finished"
    lines = [
        f"schemathesis as {caller}: {ended} in {outcome.seconds:.0f}s, exit code "
        f"{outcome.exit_code}; operations tested {totals.get('tested', len(outcome.operations))}"
        f" of {totals.get('selected', '?')}; {test_cases.get('generated', outcome.cases)} test "
        f"cases, {outcome.requests} requests; statuses {dict(sorted(outcome.statuses.items()))}",
        f"files (schemathesis's output, events.ndjson, report.json, JUnit): {workdir}",
    ]
    if outcome.failures:
        lines.append(f"{len(outcome.failures)} distinct failures (operation | check | status):")
        for failure in sorted(
            outcome.failures.values(),
            key=lambda f: (f.operation, f.check, f.status or 0, f.problem),
        ):
            lines.append(
                f"- {failure.operation} | {failure.check} | {failure.status} | x{failure.count}"
                f" | {failure.code} {failure.title}: {failure.message}"
                + (f" | answered {failure.problem}" if failure.problem else "")
                + (f" | case: {failure.scenario}" if failure.scenario else "")
            )
            lines.append(f"    {failure.reproduction[:600]}")
    if outcome.errors:
        lines.append(f"{len(outcome.errors)} distinct errors:")
        lines += [f"- {label}: {text}" for (label, _), text in sorted(outcome.errors.items())]
    lines += outcome.run_errors
    if outcome.crashes:
        lines.append("tracebacks the processes logged meanwhile (process | where | error):")
        lines += [f"- {n} | {w} | {e} | x{c}" for (n, w, e), c in sorted(outcome.crashes.items())]
    if outcome.urls_elsewhere:
        lines.append(f"requests NOT to the gateway: {outcome.urls_elsewhere[:5]}")
    return "\n".join(lines)


def log_sizes(system: Target) -> dict[str, int]:
    return {
        name: p.log_file.stat().st_size if p.log_file and p.log_file.exists() else 0
        for name, p in system.processes.items()
    }


def crashes(system: Target, since: dict[str, int]) -> dict[tuple[str, str, str], int]:
    """The processes' logged tracebacks since ``since``: (process, where, error) -> count,
    ``where`` being the innermost frame in the repository's own code."""
    found: dict[tuple[str, str, str], int] = {}
    for name, process in system.processes.items():
        if process.log_file is None or not process.log_file.exists():
            continue
        with process.log_file.open("rb") as log:
            log.seek(since.get(name, 0))
            lines = log.read().decode(errors="replace").splitlines()
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if not isinstance(record, dict) or not record.get("exc"):
                continue
            trace = str(record["exc"]).strip().splitlines()
            frames = [t.strip() for t in trace if t.strip().startswith('File "')]
            own = [f for f in frames if str(REPO) in f and "/.venv/" not in f]
            where = (own or frames or ["?"])[-1].replace(f"{REPO}/", "")
            key = (name, where, trace[-1][:200] if trace else "?")
            if record.get("logger") == "uvicorn.error" and key in found:
                continue  # the same exception, logged again by uvicorn
            found[key] = found.get(key, 0) + 1
    return found


def output_tail(workdir: Path, size: int = 4000) -> Iterator[str]:
    output = workdir / "output.txt"
    if output.exists():
        text = output.read_text(errors="replace")[-size:]
        yield f"--- schemathesis output (last lines) ---\n{text}"


# --- the tests -----------------------------------------------------------------------------


@pytest.mark.timeout(300)
@pytest.mark.parametrize("caller", ["admin", "anonymous"])
async def test_every_generated_request_is_answered_as_documented(
    system: Target, caller: str, tmp_path: Path
) -> None:
    headers = {"Authorization": f"Bearer {system.token}"} if caller == "admin" else {}
    before = log_sizes(system)
    outcome = await schemathesis(system.gateway, tmp_path / caller, headers)
    outcome.crashes = crashes(system, before)
    summary = f"{report(caller, outcome, tmp_path / caller)}\nprocesses' logs: {system.logs}"
    print(summary)
    down = [name for name, process in system.processes.items() if not process.alive]
    assert not down, f"{down} died during the run\n{summary}"
    assert not outcome.urls_elsewhere, summary
    assert outcome.operations and outcome.requests, "\n".join(
        [summary, *output_tail(tmp_path / caller)]
    )
    assert not outcome.interrupted, f"the run did not finish within its budget\n{summary}"
    assert not (outcome.failures or outcome.errors or outcome.run_errors or outcome.crashes), (
        summary
    )
    assert outcome.exit_code == 0, "\n".join([summary, *output_tail(tmp_path / caller)])
