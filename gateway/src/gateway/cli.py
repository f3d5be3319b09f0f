"""``gala``: operator and developer commands that work against a running system.

- ``gala users add --venue V --email E --role ADMIN --subject SUB`` creates a user (a
  venue's first ADMIN, typically) through the contacts service's internal API.
- ``gala dev-token --email E`` prints a session token for that user, signed with the
  local dev key that a gateway in dev mode (``make dev``) trusts.
- ``gala contacts import FILE --venue V --email E`` uploads a CSV of contacts as that
  user (an ADMIN or SALES of the venue), then follows the import job with a progress
  bar on stderr until it ends and prints its counts (``--no-follow``: the job id only).
- ``gala ops lag|dlq list|dlq show|dlq redrive|replay|outbox`` looks at and acts on the
  event flow (consumer lag, dead letters, replays, outboxes); ``gala.ops`` does the work.
  Each prints what it found or did as a table, or as JSON with ``--json``.

They read the same ``GALA_`` settings as the gateway (contacts URL, internal secret,
dev key folder, issuer); ``gala ops`` reads those of the services (Kafka bootstrap,
store URL, database and consumer group overrides).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from gala import ops
from gala.identity import IDENTITY_HEADER, PEOPLE_ROLES, InternalTokens, Principal, Role
from gala.settings import Settings, load_settings
from gateway.devauth import SigningKey
from gateway.settings import GatewaySettings


class CliError(Exception):
    pass


def _call_contacts(
    settings: GatewaySettings, method: str, path: str, expected: int, doing: str, **kw: Any
) -> Any:
    """Call the contacts service's internal API as the ``cli`` service; the JSON answer."""
    tokens = InternalTokens(settings.internal_token_secret.get_secret_value())
    headers = {IDENTITY_HEADER: tokens.issue_for_service("cli")}
    with httpx.Client(base_url=settings.upstream("contacts"), headers=headers, timeout=10) as http:
        try:
            response = http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise CliError(f"the contacts service is not reachable: {exc}") from exc
    if response.status_code != expected:
        raise CliError(f"{doing} failed: {_problem(response)}")
    return response.json()


def _problem(response: httpx.Response) -> str:
    try:
        body = response.json()
        return f"{response.status_code} {body.get('title', '')}: {body.get('detail', '')}"
    except ValueError:
        return f"{response.status_code} {response.text[:200]}"


def add_user(settings: GatewaySettings, args: argparse.Namespace) -> dict[str, Any]:
    payload = {
        "venueId": args.venue,
        "email": args.email,
        "authSubject": args.subject,
        "role": args.role,
        **({"name": args.name} if args.name else {}),
    }
    user: dict[str, Any] = _call_contacts(
        settings, "POST", "/internal/v1/users", 201, "creating the user", json=payload
    )
    return user


def dev_token(settings: GatewaySettings, args: argparse.Namespace) -> str:
    params = {"email": args.email, **({"venueId": args.venue} if args.venue else {})}
    found = _call_contacts(
        settings, "GET", "/internal/v1/users", 200, "looking the user up", params=params
    )
    users = found["items"]
    if not users:
        raise CliError(f"no user has the email {args.email}")
    if len(users) > 1:
        venues = ", ".join(user["venueId"] for user in users)
        raise CliError(f"{args.email} is a user of several venues ({venues}): pass --venue")
    (user,) = users
    subject = user.get("authSubject")
    if not subject:
        raise CliError("the user directory did not return the user's authSubject")
    key = SigningKey.load_or_create(settings.auth_dev_key_dir)
    # a dev token is only ever trusted by a gateway in dev mode, whose issuer this is
    dev = settings.model_copy(update={"auth_dev_mode": True})
    return key.mint(subject, issuer=dev.issuer(), ttl_seconds=args.ttl)


# --- gala contacts import ---------------------------------------------------------------

IMPORT_PATH = "/api/v1/contacts/import"
IMPORTS_PATH = "/api/v1/contacts/imports"
UPLOAD_CHUNK_BYTES = 64 * 1024
ENDED = ("succeeded", "failed")


def _as_user(settings: GatewaySettings, venue: str, email: str) -> Principal:
    """The venue's user with this email, as the contacts service knows them."""
    found = _call_contacts(
        settings,
        "GET",
        "/internal/v1/users",
        200,
        "looking the user up",
        params={"email": email, "venueId": venue},
    )
    users = found["items"]
    if not users:
        raise CliError(f"{email} is not a user of the venue {venue}")
    user = users[0]
    return Principal(user_id=user["id"], venue_id=venue, role=Role(user["role"]))


def _file_chunks(path: str) -> Iterator[bytes]:
    with Path(path).open("rb") as file:  # streamed, a chunk at a time
        while chunk := file.read(UPLOAD_CHUNK_BYTES):
            yield chunk


def progress_bar(job: dict[str, Any], width: int = 30) -> str:
    """One line: ``[#####.....]  42.0%  1,234 rows  running``."""
    percent = float(job.get("percentDone", 0))
    filled = min(width, int(width * percent / 100))
    return (
        f"[{'#' * filled}{'.' * (width - filled)}] {percent:5.1f}%"
        f"  {job.get('rowsRead', 0):,} rows  {job.get('state', '')}"
    )


def import_summary(job: dict[str, Any]) -> str:
    lines = [
        f"import {job['id']} {job['state']}: {job['rowsRead']:,} rows read, "
        f"{job['created']:,} created, {job['updated']:,} updated, "
        f"{job['unchanged']:,} unchanged, {job['rejected']:,} rejected"
    ]
    if job.get("error"):
        lines.append(f"error: {job['error']}")
    for rejection in job.get("rejections", []):
        lines.append(f"  line {rejection['line']}: {rejection['reason']}")
    if job["rejected"] > len(job.get("rejections", [])):
        lines.append(f"  ... and {job['rejected'] - len(job['rejections']):,} more")
    return "\n".join(lines)


def import_contacts(
    settings: GatewaySettings,
    args: argparse.Namespace,
    *,
    http: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Upload ``args.file`` as the user, then (unless ``--no-follow``) follow its job to
    the end, drawing the progress on stderr; the job as it stands last."""
    if not Path(args.file).is_file():
        raise CliError(f"{args.file} is not a file")
    principal = _as_user(settings, args.venue, args.email)
    tokens = InternalTokens(settings.internal_token_secret.get_secret_value())

    def headers() -> dict[str, str]:  # a fresh identity per request: tokens live briefly
        return {IDENTITY_HEADER: tokens.issue(principal)}

    client = http or httpx.Client(
        base_url=settings.upstream("contacts"), timeout=httpx.Timeout(30, write=None)
    )
    try:
        try:
            response = client.post(
                IMPORT_PATH,
                content=_file_chunks(args.file),
                headers={**headers(), "Content-Type": "text/csv; charset=utf-8"},
            )
        except httpx.HTTPError as exc:
            raise CliError(f"the contacts service is not reachable: {exc}") from exc
        if response.status_code != 202:
            raise CliError(f"the import was refused: {_problem(response)}")
        job: dict[str, Any] = response.json()
        if args.no_follow:
            return job
        tty = sys.stderr.isatty()
        while True:
            print(("\r" if tty else "") + progress_bar(job), end="" if tty else "\n",
                  file=sys.stderr, flush=True)  # fmt: skip
            if job["state"] in ENDED:
                break
            sleep(args.interval)
            try:
                polled = client.get(f"{IMPORTS_PATH}/{job['id']}", headers=headers())
            except httpx.HTTPError as exc:
                raise CliError(f"the contacts service is not reachable: {exc}") from exc
            if polled.status_code != 200:
                raise CliError(f"following the import failed: {_problem(polled)}")
            job = polled.json()
        if tty:
            print(file=sys.stderr)
        return job
    finally:
        if http is None:
            client.close()


# --- gala ops ---------------------------------------------------------------------------


def _targets(settings: Settings, args: argparse.Namespace) -> list[ops.Target]:
    names = [args.service] if args.service else ops.installed_services()
    group = getattr(args, "group", None)
    if group and not args.service:
        raise CliError("--group needs --service")
    return [ops.Target.of(ops.load_service(name), settings, group) for name in names]


def _target(settings: Settings, args: argparse.Namespace) -> ops.Target:
    (target,) = _targets(settings, args)
    return target


async def run_ops(settings: Settings, args: argparse.Namespace) -> tuple[Any, str]:
    """Run one ``gala ops`` command: (what to print with ``--json``, the readable text)."""
    if args.ops == "lag":
        rows = [row.__dict__ for row in await ops.lag(settings, _targets(settings, args))]
        return rows, _table(
            rows, ["service", "group", "topic", "partition", "committed", "end", "lag"]
        )
    if args.ops == "outbox":
        states = await ops.outbox(settings, _targets(settings, args))
        found = [
            {
                "service": state.service,
                "database": state.database,
                "pendingDocuments": state.pending_documents,
                "oldestPendingAgeSeconds": state.oldest_pending_age_seconds,
                "pending": state.pending,
            }
            for state in states
        ]
        lines = [
            {
                "service": s.service,
                "collection": name,
                "pending": count,
                "oldestAgeSeconds": s.oldest_pending_age_seconds,
            }
            for s in states
            for name, count in s.pending.items()
        ]
        return found, _table(lines, ["service", "collection", "pending", "oldestAgeSeconds"])
    if args.ops == "replay":
        target = _target(settings, args)
        done = await ops.replay(settings, target, ops.parse_since(args.since))
        partitions = [p.__dict__ for p in done.partitions]
        report = {
            "service": done.service,
            "group": done.group,
            "replayId": done.replay_id,
            "since": done.since.isoformat(),
            "copied": done.copied,
            "partitions": partitions,
        }
        text = _table(partitions, ["topic", "partition", "first_offset", "end_offset", "copied"])
        heading = (
            f"replay {done.replay_id}: {done.copied} events since {done.since.isoformat()}"
            f" handed to {done.group} again"
        )
        return report, f"{heading}\n{text}"
    return await _dlq(settings, args)


async def _dlq(settings: Settings, args: argparse.Namespace) -> tuple[Any, str]:
    columns = ["service", "partition", "offset", "failedAt", "eventType", "eventId", "origin",
               "handler", "attempts", "error", "redrivenAt"]  # fmt: skip
    if args.dlq == "list":
        letters = [
            letter.summary()
            for target in _targets(settings, args)
            for letter in await ops.dead_letters(settings, target, limit=args.limit)
        ]
        return letters, _table(letters, columns)
    if args.dlq == "show":
        letter = await ops.dead_letter(
            settings,
            _target(settings, args),
            offset=args.offset,
            partition=args.partition,
            event_id=args.event_id,
        )
        detail = letter.detail()
        return detail, json.dumps(detail, indent=2, default=str)
    results = await ops.redrive(
        settings,
        _target(settings, args),
        offset=args.offset,
        partition=args.partition,
        event_id=args.event_id,
        everything=args.all,
    )
    rows = [result.summary() for result in results]
    redriven = sum(1 for result in results if result.outcome == "redriven")
    text = _table(
        rows, ["partition", "offset", "eventType", "eventId", "origin", "group", "outcome"]
    )
    return rows, f"{redriven} of {len(rows)} dead letters redriven\n{text}"


def _table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    if not rows:
        return "(none)"
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    widths = [
        max(len(column), *(len(line[i]) for line in cells)) for i, column in enumerate(columns)
    ]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in cells
    ]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    text = str(value).replace("\n", " ")
    return text if len(text) <= 80 else text[:77] + "..."


def _ops_parser(commands: Any) -> None:
    root = commands.add_parser("ops", help="lag, dead letters, replays and outboxes")
    sub = root.add_subparsers(dest="ops", required=True)

    def command(parent: Any, name: str, text: str, *, service: str = "optional") -> Any:
        found = parent.add_parser(name, help=text, description=text)
        found.add_argument("--json", action="store_true", help="print JSON")
        required = service == "required"
        found.add_argument(
            "--service",
            required=required,
            help="a service" + ("" if required else " (default: all)"),
        )
        found.add_argument("--group", help="its consumer group, if not gala.<service>")
        return found

    command(sub, "lag", "per service and partition: committed offset, end offset, lag")
    command(sub, "outbox", "pending outbox documents and the oldest pending age per service")
    replay = command(
        sub,
        "replay",
        "hand a service's events since a time to its handlers again",
        service="required",
    )
    replay.add_argument(
        "--since", required=True, help="an ISO 8601 time (UTC by default) or e.g. 15m, 2h, 1d"
    )
    dlq = sub.add_parser("dlq", help="dead letters").add_subparsers(dest="dlq", required=True)
    listed = command(dlq, "list", "the latest dead letters")
    listed.add_argument("--limit", type=int, default=50, help="per service (default 50)")
    show = command(
        dlq, "show", "one dead letter, with its error, trace and payload", service="required"
    )
    again = command(
        dlq, "redrive", "hand dead letters back to the group that failed them", service="required"
    )
    for which in (show, again):
        which.add_argument("--partition", type=int, help="needed if the offset is in several")
    pick = show.add_mutually_exclusive_group(required=True)
    pick.add_argument("--offset", type=int)
    pick.add_argument("--event-id")
    pick = again.add_mutually_exclusive_group(required=True)
    pick.add_argument("--offset", type=int)
    pick.add_argument("--event-id")
    pick.add_argument("--all", action="store_true", help="every dead letter not redriven yet")


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="gala", description=__doc__.split("\n\n")[0])
    commands = root.add_subparsers(dest="command", required=True)

    token = commands.add_parser("dev-token", help="print a dev session token for a user")
    token.add_argument("--email", required=True)
    token.add_argument("--venue", help="needed when the email is a user of several venues")
    token.add_argument("--ttl", type=int, default=3600, help="seconds (default 3600)")

    users = commands.add_parser("users", help="manage users").add_subparsers(
        dest="action", required=True
    )
    add = users.add_parser("add", help="create a user (e.g. a venue's first ADMIN)")
    add.add_argument("--venue", required=True)
    add.add_argument("--email", required=True)
    add.add_argument(
        "--role", required=True, choices=[role.value for role in Role if role in PEOPLE_ROLES]
    )
    add.add_argument("--subject", required=True, help="the identity provider's user id (sub)")
    add.add_argument("--name")

    contacts = commands.add_parser("contacts", help="contacts").add_subparsers(
        dest="action", required=True
    )
    load = contacts.add_parser(
        "import",
        help="import a CSV file of contacts as a job, and follow it",
        description="Upload FILE (CSV, UTF-8: name,email[,phone,leadSource,status,"
        "customFields]) into the venue's contacts as the user with --email (ADMIN or SALES),"
        " then follow the job with a progress bar on stderr and print its counts.",
    )
    load.add_argument("file", metavar="FILE")
    load.add_argument("--venue", required=True)
    load.add_argument("--email", required=True, help="the importing user (ADMIN or SALES)")
    load.add_argument("--no-follow", action="store_true", help="print the job id and return")
    load.add_argument("--json", action="store_true", help="print the final job as JSON")
    load.add_argument("--interval", type=float, default=0.5, help="seconds between looks")

    _ops_parser(commands)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "ops":
        return _main_ops(args)
    settings = load_settings(GatewaySettings)
    try:
        if args.command == "dev-token":
            print(dev_token(settings, args))
        elif args.command == "contacts":
            return _main_import(settings, args)
        else:
            print(json.dumps(add_user(settings, args), indent=2))
    except (CliError, ValueError) as exc:
        print(f"gala: {exc}", file=sys.stderr)
        return 1
    return 0


def _main_import(settings: GatewaySettings, args: argparse.Namespace) -> int:
    job = import_contacts(settings, args)
    if args.no_follow:
        print(job["id"])
        return 0
    print(json.dumps(job, indent=2) if args.json else import_summary(job))
    return 0 if job["state"] == "succeeded" else 1


def _main_ops(args: argparse.Namespace) -> int:
    settings = load_settings(Settings)
    try:
        found, text = asyncio.run(run_ops(settings, args))
    except (CliError, ops.OpsError) as exc:
        print(f"gala: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(found, indent=2, default=str) if args.json else text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
