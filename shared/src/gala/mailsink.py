"""A local SMTP server that keeps every mail it receives as a file (development, tests).

``make dev`` runs it (``python -m gala.mailsink``) and points the services' SMTP
settings at it, so a person can read what Gala sends in ``~/.gala/mail`` (one ``.eml``
file per message, named by arrival); tests run it in-process and read the same files.
Nothing is ever relayed anywhere.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import os
import signal
import time
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

DEFAULT_DIR = Path.home() / ".gala" / "mail"


class _KeepMessages:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.eml"
        partial = self.folder / f".{name}.part"
        partial.write_bytes(envelope.original_content or envelope.content)
        os.replace(partial, self.folder / name)  # readers never see half a message
        return "250 Message accepted for delivery"


class MailSink:
    """An SMTP server on ``host:port`` keeping mail in ``folder`` (start/stop, or ``with``)."""

    def __init__(self, folder: Path, host: str = "127.0.0.1", port: int = 1025) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self._controller = Controller(_KeepMessages(folder), hostname=host, port=port)

    @property
    def host(self) -> str:
        return str(self._controller.hostname)

    @property
    def port(self) -> int:
        return int(self._controller.port)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> MailSink:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def messages(self) -> list[EmailMessage]:
        """Every mail received so far, oldest first."""
        found = []
        for path in sorted(self.folder.glob("*.eml")):
            parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            assert isinstance(parsed, EmailMessage)
            found.append(parsed)
        return found

    def sent_to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages() if address in str(m.get("To", ""))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    args = parser.parse_args()
    stop = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)  # before the server thread starts
    sink = MailSink(args.dir, args.host, args.port)
    sink.start()
    print(f"mail sink: smtp://{args.host}:{args.port} -> {args.dir}", flush=True)
    try:
        signal.sigwait(stop)
    finally:
        sink.stop()


if __name__ == "__main__":
    main()
