"""Mail over SMTP: what a service hands over, and how it leaves.

Services build a :class:`Mail` (their own templates) and hand it to a :class:`Mailer`;
:func:`smtp_mailer` makes one from the SMTP settings every mailing service reads
(``GALA_SMTP_HOST``, ``_PORT``, ``_USERNAME``, ``_PASSWORD``, ``_STARTTLS``,
``_TIMEOUT_SECONDS``, ``GALA_MAIL_SENDER``); without a host nothing is mailed.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol

import aiosmtplib
from pydantic import SecretStr


class MailFailed(Exception):
    """The mail could not be handed to the SMTP server (the caller may try again)."""


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str


class Mailer(Protocol):
    async def send(self, mail: Mail) -> None:
        """Hand ``mail`` over, or raise ``MailFailed``."""


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int = 1025
    username: str | None = None
    password: SecretStr | None = None
    starttls: bool = False
    timeout_seconds: float = 10.0


class SmtpMailer:
    """Sends each mail in one SMTP session of its own."""

    def __init__(self, server: SmtpServer, sender: str) -> None:
        self._server = server
        self._sender = sender

    async def send(self, mail: Mail) -> None:
        s = self._server
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message.set_content(mail.body)
        try:
            await aiosmtplib.send(
                message,
                hostname=s.host,
                port=s.port,
                username=s.username,
                password=s.password.get_secret_value() if s.password else None,
                start_tls=s.starttls,
                timeout=s.timeout_seconds,
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise MailFailed(f"{type(exc).__name__}: {exc}") from exc


class SmtpSettings(Protocol):
    """The SMTP fields a mailing service's settings have."""

    @property
    def smtp_host(self) -> str | None: ...
    @property
    def smtp_port(self) -> int: ...
    @property
    def smtp_username(self) -> str | None: ...
    @property
    def smtp_password(self) -> SecretStr | None: ...
    @property
    def smtp_starttls(self) -> bool: ...
    @property
    def smtp_timeout_seconds(self) -> float: ...
    @property
    def mail_sender(self) -> str: ...


def smtp_mailer(settings: SmtpSettings) -> SmtpMailer | None:
    """A mailer for the configured SMTP server, or ``None`` when no host is set."""
    if settings.smtp_host is None:
        return None
    server = SmtpServer(
        host=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_username,
        password=settings.smtp_password,
        starttls=settings.smtp_starttls,
        timeout_seconds=settings.smtp_timeout_seconds,
    )
    return SmtpMailer(server, settings.mail_sender)
