"""``gala``: operator and developer commands that work against a running system.

- ``gala users add --venue V --email E --role ADMIN --subject SUB`` creates a user (a
  venue's first ADMIN, typically) through the contacts service's internal API.
- ``gala dev-token --email E`` prints a session token for that user, signed with the
  local dev key that a gateway in dev mode (``make dev``) trusts.

They read the same ``GALA_`` settings as the gateway (contacts URL, internal secret,
dev key folder, issuer).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

import httpx

from gala.identity import IDENTITY_HEADER, InternalTokens, Role
from gala.settings import load_settings
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
    add.add_argument("--role", required=True, choices=[role.value for role in Role])
    add.add_argument("--subject", required=True, help="the identity provider's user id (sub)")
    add.add_argument("--name")
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = load_settings(GatewaySettings)
    try:
        if args.command == "dev-token":
            print(dev_token(settings, args))
        else:
            print(json.dumps(add_user(settings, args), indent=2))
    except (CliError, ValueError) as exc:
        print(f"gala: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
