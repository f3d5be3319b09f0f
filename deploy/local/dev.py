#!/usr/bin/env python3
"""Run Gala locally: infrastructure plus every service package, output line-prefixed.

Standard library only; `make dev` runs it. It brings the infrastructure up with
deploy/local/infra.py, then starts `.venv/bin/python -m <package>` for the gateway and
each service whose `__main__.py` exists, with GALA_KAFKA_BOOTSTRAP and GALA_MONGO_URL in
their environment, and a local SMTP sink (`gala.mailsink`, mail kept in ~/.gala/mail)
unless GALA_SMTP_HOST names a mail server. Ctrl-C or SIGTERM stops them all (SIGTERM,
SIGKILL after 10 s), then stops the infrastructure this run started. If a service exits
on its own, everything is stopped and the exit code is 1.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "deploy" / "local" / "infra.py"
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
SERVICES = ("contacts", "pipeline", "projects", "chat", "billing", "partners")
STOP_GRACE = 10.0
COLORS = ("36", "33", "35", "32", "34", "91", "96", "93")
ENV_KEYS = ("GALA_KAFKA_BOOTSTRAP", "GALA_MONGO_URL")
MAIL_SINK_PORT = "1025"
MAIL_DIR = Path.home() / ".gala" / "mail"  # where `python -m gala.mailsink` keeps mail


def say(message: str) -> None:
    print(f"[dev] {message}", file=sys.stderr, flush=True)


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    prefix: str
    reader: threading.Thread | None = field(default=None)


def discover() -> list[tuple[str, Path]]:
    """(package, source folder) for each runnable package, the gateway first."""
    found = []
    candidates = [("gateway", REPO / "gateway")] + [(s, REPO / "services" / s) for s in SERVICES]
    for package, folder in candidates:
        if (folder / "src" / package / "__main__.py").is_file():
            found.append((package, folder))
    return found


def read_started(path: Path) -> list[str]:
    with contextlib.suppress(OSError):
        return path.read_text().split()
    return []


def infra_up(started_file: Path) -> dict[str, str]:
    result = subprocess.run(
        [sys.executable, str(INFRA), "up", "--started-file", str(started_file)],
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(result.returncode)
    pairs = (line.partition("=") for line in result.stdout.splitlines())
    return {key: value for key, _, value in pairs if key in ENV_KEYS}


def infra_down(names: list[str]) -> None:
    if names:
        say(f"stopping infrastructure started by this run: {' '.join(names)}")
        subprocess.run([sys.executable, str(INFRA), "down", *names], check=False)


def prefixes(names: list[str]) -> list[str]:
    width = max((len(n) for n in names), default=0) + 2
    color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    labels = [f"[{n}]".ljust(width) for n in names]
    if not color:
        return [label + " " for label in labels]
    return [f"\033[{COLORS[i % len(COLORS)]}m{label}\033[0m " for i, label in enumerate(labels)]


def pump(child: Child, out: IO[str], lock: threading.Lock) -> None:
    stream = child.process.stdout
    assert stream is not None
    for raw in iter(stream.readline, b""):
        line = raw.decode(errors="replace").rstrip("\n")
        with lock:
            out.write(f"{child.prefix}{line}\n")
            out.flush()


def start_children(packages: list[tuple[str, Path]], env: dict[str, str]) -> list[Child]:
    lock = threading.Lock()
    children = []
    for (package, folder), prefix in zip(packages, prefixes([p for p, _ in packages]), strict=True):
        process = subprocess.Popen(
            [str(VENV_PYTHON), "-m", package],
            cwd=folder,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        child = Child(package, process, prefix)
        child.reader = threading.Thread(target=pump, args=(child, sys.stdout, lock), daemon=True)
        child.reader.start()
        children.append(child)
        say(f"started {package} (pid {process.pid})")
    return children


def signal_group(child: Child, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.process.pid, sig)


def stop_children(children: list[Child]) -> None:
    running = [c for c in children if c.process.poll() is None]
    if running:
        say(f"stopping {', '.join(c.name for c in running)} ...")
    for child in running:
        signal_group(child, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE
    for child in running:
        try:
            child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"{child.name} did not stop within {STOP_GRACE:.0f}s; killing it")
            signal_group(child, signal.SIGKILL)
            child.process.wait()
    for child in children:
        if child.reader is not None:
            child.reader.join(timeout=2.0)


def supervise(children: list[Child], stop: threading.Event) -> int:
    """Wait for a stop request (exit 0) or a child that exits on its own (exit 1)."""
    while not stop.wait(0.2):
        for child in children:
            code = child.process.poll()
            if code is not None:
                say(f"{child.name} exited unexpectedly with code {code}; stopping everything")
                return 1
    say("stop requested")
    return 0


def install_stop_handlers(stop: threading.Event) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def run(started_file: Path) -> int:
    stop = threading.Event()
    env = {**os.environ, **infra_up(started_file), "PYTHONUNBUFFERED": "1"}
    # The explicit dev mode: processes make up their secrets instead of refusing to start.
    env.setdefault("GALA_DEV_MODE", "true")
    if "GALA_AUTH_JWKS_URL" not in env:
        # No identity provider configured: the gateway trusts a local dev key pair.
        env.setdefault("GALA_AUTH_DEV_MODE", "true")
        say(
            "auth: dev mode. First admin: .venv/bin/gala users add --venue V --email E "
            "--role ADMIN --subject SUB; a token: .venv/bin/gala dev-token --email E"
        )
    install_stop_handlers(stop)
    packages = discover()
    if packages and "GALA_SMTP_HOST" not in env:
        # No mail server configured: a local sink keeps every mail as a file to read.
        env.update(GALA_SMTP_HOST="127.0.0.1", GALA_SMTP_PORT=MAIL_SINK_PORT)
        packages.insert(0, ("gala.mailsink", REPO / "shared"))
        say(f"mail: nothing leaves this machine; read what is sent in {MAIL_DIR}")
    if not packages:
        say("no service has a __main__.py yet; infrastructure is up, Ctrl-C to stop")
    elif not VENV_PYTHON.exists():
        say(f"{VENV_PYTHON} is missing: run `make venv`")
        return 1
    say(
        f"GALA_KAFKA_BOOTSTRAP={env['GALA_KAFKA_BOOTSTRAP']} GALA_MONGO_URL={env['GALA_MONGO_URL']}"
    )
    children: list[Child] = []
    try:
        children = start_children(packages, env)
        return supervise(children, stop)
    finally:
        stop_children(children)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="gala-dev-") as tmp:
        started_file = Path(tmp) / "started"
        try:
            return run(started_file)
        except KeyboardInterrupt:
            return 130
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            infra_down(read_started(started_file))


if __name__ == "__main__":
    sys.exit(main())
