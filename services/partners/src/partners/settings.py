"""The partners service's own settings (prefix ``GALA_``), on top of the shared ones."""

from __future__ import annotations

from datetime import timedelta
from typing import Self

from pydantic import Field, SecretStr, model_validator

from gala.settings import Settings, settings_as


class PartnersSettings(Settings):
    # --- the venue event log (helper "core") ---
    event_log_retention_days: float = Field(
        default=30.0, gt=0, description="How long the event log keeps an event (at least)."
    )
    event_log_sweep_interval_seconds: float = Field(
        default=3600.0, gt=0, description="How often a worker expires the log's old events."
    )
    event_log_gap_grace_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How long a reader waits for a log position a writer took but has not"
        " filled yet before it gives the position up (the writer then takes another).",
    )

    # --- webhooks and their deliveries (helper "webhooks") ---
    webhook_allow_http: bool | None = Field(
        default=None,
        description="Accept http:// endpoint URLs (default: only in dev mode; else https only).",
    )
    webhook_allow_private_targets: bool = Field(
        default=False,
        description="Deliver to loopback, link-local, private and other non-public"
        " addresses (tests and dev only: otherwise refused, at creation and at delivery).",
    )
    webhook_timeout_seconds: float = Field(
        default=15.0, gt=0, description="One delivery attempt's limit (connect to last byte)."
    )
    webhook_retry_schedule: list[timedelta] = Field(
        default=[
            timedelta(seconds=5),
            timedelta(minutes=5),
            timedelta(minutes=30),
            timedelta(hours=2),
            timedelta(hours=5),
            timedelta(hours=10),
            timedelta(hours=14),
            timedelta(hours=20),
            timedelta(hours=24),
        ],
        description="The waits before each retry after the first attempt (which is"
        " immediate): Standard Webhooks' schedule; a delivery fails after the last one.",
    )
    webhook_retry_jitter: float = Field(
        default=0.1, ge=0, le=0.5, description="Each wait varies by up to this fraction."
    )
    webhook_max_retry_after_seconds: float = Field(
        default=86400.0, gt=0, description="The longest Retry-After (429/503) honoured."
    )
    webhook_disable_after: timedelta = Field(
        default=timedelta(days=5),
        description="An endpoint whose every attempt failed for this long is disabled.",
    )
    webhook_secret_overlap: timedelta = Field(
        default=timedelta(hours=24),
        description="How long a rotated-out secret keeps signing beside the new one.",
    )
    webhook_lease_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How long a claimed delivery is a worker's own (another takes it over"
        " then if that worker died); longer than an attempt's timeout.",
    )
    webhook_tick_seconds: float = Field(
        default=1.0, gt=0, description="How often an idle worker looks for due deliveries."
    )
    webhook_concurrency: int = Field(
        default=64, ge=1, description="Attempts in flight at once, per worker replica."
    )
    webhook_concurrency_per_endpoint: int = Field(
        default=4, ge=1, description="Attempts in flight at once to one endpoint, per replica."
    )

    # Mail to a venue's ADMINs when an endpoint is disabled for failing (SMTP; the same
    # variables as billing's reminders). No host: not mailed, logged.
    smtp_host: str | None = None
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = Field(default=10.0, gt=0)
    mail_sender: str = "Gala <partners@gala.localhost>"

    @model_validator(mode="after")
    def _lease_outlasts_an_attempt(self) -> Self:
        if self.webhook_lease_seconds <= self.webhook_timeout_seconds:
            raise ValueError(
                "GALA_WEBHOOK_LEASE_SECONDS must exceed GALA_WEBHOOK_TIMEOUT_SECONDS"
                " (a lease may not run out during an attempt)"
            )
        return self

    @property
    def webhook_http_allowed(self) -> bool:
        return self.dev_mode if self.webhook_allow_http is None else self.webhook_allow_http


def partners_settings(settings: Settings) -> PartnersSettings:
    """``settings`` as the partners service's own (the rest from the environment)."""
    return settings_as(settings, PartnersSettings)
