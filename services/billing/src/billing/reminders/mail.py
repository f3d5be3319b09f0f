"""Reminder mails: what they say (templates from settings) and how they leave (SMTP)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol

import aiosmtplib

from billing.reminders.domain import ReminderKind
from billing.settings import BillingSettings

log = logging.getLogger(__name__)


class MailFailed(Exception):
    """The mail could not be handed to the SMTP server (it will be tried again)."""


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str


class Mailer(Protocol):
    async def send(self, mail: Mail) -> None:
        """Hand ``mail`` over, or raise ``MailFailed``."""


class SmtpMailer:
    def __init__(self, settings: BillingSettings) -> None:
        assert settings.smtp_host is not None
        self._settings = settings

    async def send(self, mail: Mail) -> None:
        s = self._settings
        message = EmailMessage()
        message["From"] = s.mail_sender
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message.set_content(mail.body)
        try:
            await aiosmtplib.send(
                message,
                hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_username,
                password=s.smtp_password.get_secret_value() if s.smtp_password else None,
                start_tls=s.smtp_starttls,
                timeout=s.smtp_timeout_seconds,
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise MailFailed(f"{type(exc).__name__}: {exc}") from exc


def mailer_from(settings: BillingSettings) -> Mailer | None:
    if settings.smtp_host is None:
        log.warning("GALA_SMTP_HOST is not set: payment reminders are not mailed")
        return None
    return SmtpMailer(settings)


class _Fields(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"  # an unknown placeholder stays as written


def reminder_mail(
    settings: BillingSettings,
    kind: ReminderKind,
    *,
    to: str,
    name: str | None,
    amount: str,
    currency: str,
    due_date: str,
    event: str | None,
) -> Mail:
    fields = _Fields(
        name=name or "there", amount=amount, currency=currency, due_date=due_date,
        event=event or "your event",
    )  # fmt: skip
    if kind is ReminderKind.DUE:
        subject, body = settings.mail_due_subject, settings.mail_due_body
    else:
        subject, body = settings.mail_overdue_subject, settings.mail_overdue_body
    return Mail(to, subject.format_map(fields), body.format_map(fields))
