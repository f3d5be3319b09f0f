"""Reminder mails: what they say (templates from settings); they leave through the
kernel's SMTP mailer (``gala.mail``)."""

from __future__ import annotations

import logging

from billing.reminders.domain import ReminderKind
from billing.settings import BillingSettings
from gala.mail import Mail, Mailer, MailFailed, smtp_mailer

__all__ = ["Mail", "MailFailed", "Mailer", "mailer_from", "reminder_mail"]

log = logging.getLogger(__name__)


def mailer_from(settings: BillingSettings) -> Mailer | None:
    mailer = smtp_mailer(settings)
    if mailer is None:
        log.warning("GALA_SMTP_HOST is not set: payment reminders are not mailed")
    return mailer


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
