"""The pipeline service's own settings (prefix ``GALA_``), on top of the shared ones."""

from __future__ import annotations

from pydantic import Field

from gala.settings import Settings, settings_as

CONTACTS_URL = "http://127.0.0.1:8001"


class PipelineSettings(Settings):
    # Where the pipeline asks the contacts service about a contact its copy does not
    # know yet (GALA_PIPELINE_CONTACTS_URL; see pipeline/contacts/owner.py).
    pipeline_contacts_url: str = Field(
        default=CONTACTS_URL, description="The contacts service's base URL (internal API)."
    )
    pipeline_contacts_timeout_seconds: float = Field(
        default=2.0, gt=0, description="How long one question to the contacts service may take."
    )


def pipeline_settings(settings: Settings) -> PipelineSettings:
    """``settings`` as the pipeline service's own (the rest from the environment)."""
    return settings_as(settings, PipelineSettings)
