"""The contacts service's own settings (prefix ``GALA_``), on top of the shared ones."""

from __future__ import annotations

from pydantic import Field, SecretStr

from gala.settings import Settings, settings_as

META_GRAPH_URL = "https://graph.facebook.com/v19.0"


class ContactsSettings(Settings):
    # Website intake (POST /api/v1/intake/{venueKey}).
    intake_rate_limit_per_minute: int = Field(
        default=10, ge=1, description="Submissions per venue form and client address per minute."
    )
    intake_max_body_bytes: int = Field(default=65_536, ge=1024)
    # Client addresses come from X-Forwarded-For as the kernel's trusted_proxies says.

    # Meta (Facebook/Instagram) lead ads (GET/POST /api/v1/intake/meta). Leads are read
    # with each page's own access token, which the venue's ADMIN gives when mapping the
    # page (PUT /api/v1/contacts/intake-meta-pages): there is no global page token.
    meta_verify_token: SecretStr | None = Field(
        default=None, description="The token Meta echoes in the subscription handshake."
    )
    meta_app_secret: SecretStr | None = Field(
        default=None, description="Signs webhook payloads (X-Hub-Signature-256)."
    )
    meta_graph_url: str = META_GRAPH_URL
    meta_graph_timeout_seconds: float = Field(default=10.0, gt=0)
    meta_max_body_bytes: int = Field(default=1_048_576, ge=1024)
    meta_lead_max_attempts: int = Field(default=8, ge=1)
    meta_lead_backoff_initial_seconds: float = Field(default=5.0, ge=0)
    meta_lead_backoff_max_seconds: float = Field(default=900.0, ge=0)
    meta_lead_lease_seconds: float = Field(default=60.0, gt=0)
    meta_lead_poll_interval_seconds: float = Field(default=2.0, gt=0)

    # CSV imports (POST /api/v1/contacts/import): staged, then run as jobs by workers.
    import_batch_rows: int = Field(
        default=250, ge=1, le=5000, description="Rows an import job applies per batch."
    )
    import_batch_pause_seconds: float = Field(
        default=0.005,
        ge=0,
        description="A job's pause between batches, so other requests of the process run.",
    )
    import_lease_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How long a worker holds a job without recording a batch; then another"
        " worker takes it over and resumes after the last recorded batch.",
    )
    import_poll_interval_seconds: float = Field(default=1.0, gt=0)
    import_max_attempts: int = Field(
        default=5, ge=1, description="Claims of one job (takeovers included) before it fails."
    )
    import_abandoned_upload_hours: float = Field(
        default=24.0, gt=0, description="When a staged upload that never became a job is deleted."
    )


def contacts_settings(settings: Settings) -> ContactsSettings:
    """``settings`` as the contacts service's own (the rest from the environment)."""
    return settings_as(settings, ContactsSettings)
