"""The billing service's own settings (prefix ``GALA_``), on top of the shared ones.

Durations are ISO 8601 (``P7D``, ``PT30S``) or seconds, so tests run the reminder flow
in seconds with real time.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, SecretStr

from gala.settings import Settings, settings_as


class BillingSettings(Settings):
    # Reminders: before an installment's due date, and after it while unpaid.
    reminders_before_due: list[timedelta] = Field(
        default=[timedelta(days=7), timedelta(days=1)],
        description="A payment-due reminder this long before the due date (each).",
    )
    reminders_after_due: list[timedelta] = Field(
        default=[timedelta(days=3), timedelta(days=7)],
        description="Overdue reminders this long after the due date (it turns OVERDUE at 0).",
    )
    reminder_tick_seconds: float = Field(default=30.0, gt=0)
    reminder_lease_seconds: float = Field(
        default=60.0, gt=0, description="How long a claimed reminder is a replica's own."
    )
    reminder_batch: int = Field(default=20, ge=1, description="Reminders claimed per tick.")
    reminder_mail_max_attempts: int = Field(default=6, ge=1)
    reminder_mail_retry_seconds: float = Field(default=60.0, gt=0)

    # Mail (SMTP): reminders also go to the client. No host: no mail (logged).
    smtp_host: str | None = None
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = Field(default=10.0, gt=0)
    mail_sender: str = "Gala <billing@gala.localhost>"
    mail_due_subject: str = "Payment of {amount} {currency} due on {due_date}"
    mail_due_body: str = (
        "Hello {name},\n\nthis is a reminder that an installment of {amount} {currency}"
        " for {event} is due on {due_date}.\n\nThank you!\n"
    )
    mail_overdue_subject: str = "Payment of {amount} {currency} is overdue"
    mail_overdue_body: str = (
        "Hello {name},\n\nthe installment of {amount} {currency} for {event} was due on"
        " {due_date} and has not reached us yet. Please settle it at your earliest"
        " convenience.\n\nThank you!\n"
    )

    # Online payments (Stripe Checkout). No key: checkout answers 503.
    stripe_api_key: SecretStr | None = None
    stripe_api_base: str | None = Field(
        default=None, description="Stripe's API by default; stripe-mock in tests and dev."
    )
    stripe_webhook_secret: SecretStr | None = Field(
        default=None, description="Verifies Stripe-Signature on webhooks (whsec_...)."
    )
    stripe_webhook_tolerance_seconds: int = Field(default=300, ge=1)
    stripe_webhook_max_bytes: int = Field(default=262_144, ge=1024)
    checkout_success_url: str = "http://127.0.0.1:8000/?payment={payment_id}&paid=1"
    checkout_cancel_url: str = "http://127.0.0.1:8000/?payment={payment_id}&paid=0"

    # Documents: files kept in a blob store, downloaded through signed, expiring links.
    blob_store: Literal["local", "s3"] = "local"
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = Field(
        default=None, description="An S3-compatible service (MinIO, R2...); AWS when unset."
    )
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_prefix: str = "documents/"
    blob_dir: Path = Field(
        default=Path.home() / ".gala" / "billing-blobs",
        description="The local blob store's folder.",
    )
    document_max_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    document_link_ttl_seconds: int = Field(default=900, ge=1)
    document_link_secret: SecretStr = Field(
        default=SecretStr(""), description="Signs download links: a secret of its own."
    )

    SECRETS: ClassVar[tuple[str, ...]] = (*Settings.SECRETS, "document_link_secret")

    def link_secret(self) -> bytes:
        return self.document_link_secret.get_secret_value().encode()


def billing_settings(settings: Settings) -> BillingSettings:
    """``settings`` as the billing service's own (the rest from the environment)."""
    return settings_as(settings, BillingSettings)
