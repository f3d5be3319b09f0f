"""Configuration from the environment (prefix ``GALA_``)."""

from __future__ import annotations

import os
from typing import Literal, TypeVar

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_INTERNAL_TOKEN_SECRET = "gala-dev-only-internal-token-secret-change-me"


class Settings(BaseSettings):
    """Settings every service shares; a service subclasses it for its own knobs."""

    model_config = SettingsConfigDict(env_prefix="GALA_", extra="ignore")

    kafka_bootstrap: str = "127.0.0.1:9092"
    mongo_url: str = "mongodb://127.0.0.1:27017"
    mongo_database: str | None = Field(
        default=None, description="Defaults to gala_<service>: one database per service."
    )
    host: str = "127.0.0.1"
    log_level: str = "INFO"

    # Topics: partitions bound how far one service's consumers can scale out.
    topic_partitions: int = Field(default=3, ge=1)
    topic_replication_factor: int = Field(default=1, ge=1)

    # Consumer group: one per service (gala.<service>) unless overridden. A new group reads
    # each topic from its beginning ("earliest"): nothing published before it joined is
    # missed. Tests isolate themselves with a group of their own that starts at "latest".
    consumer_group: str | None = None
    consumer_start_from: Literal["earliest", "latest"] = "earliest"

    # Consumer: bounded retries with exponential backoff, then the dead-letter topic.
    consumer_max_attempts: int = Field(default=5, ge=1)
    consumer_backoff_initial_seconds: float = Field(default=0.2, ge=0)
    consumer_backoff_max_seconds: float = Field(default=5.0, ge=0)

    # Processed-event records (idempotent consumers) are kept this long: well past the
    # broker's retention, so no redelivery can find its record gone.
    processed_event_retention_days: float = Field(default=30.0, gt=0)
    processed_event_prune_interval_seconds: float = Field(default=3600.0, gt=0)

    # How long in-flight handlers may finish at shutdown before they are cancelled
    # (a cancelled handler commits nothing: its message is delivered again).
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)

    # Outbox relay: relays each local write at once; sweeps as a safety net this often.
    outbox_poll_interval_seconds: float = Field(default=5.0, gt=0)
    outbox_lease_seconds: float = Field(default=30.0, gt=0)
    outbox_concurrency: int = Field(default=8, ge=1)

    # Identity forwarded by the gateway.
    internal_token_secret: SecretStr = SecretStr(DEV_INTERNAL_TOKEN_SECRET)
    internal_token_ttl_seconds: int = Field(default=120, ge=1)

    def database_name(self, service: str) -> str:
        return self.mongo_database or f"gala_{service}"

    def port_for(self, service: str, default: int) -> int:
        """A service's port: ``GALA_<SERVICE>_PORT`` or its fixed default."""
        value = os.environ.get(f"GALA_{service.upper()}_PORT")
        return int(value) if value else default


S = TypeVar("S", bound=Settings)


def settings_as(settings: Settings, kind: type[S]) -> S:
    """``settings`` as a service's own settings class (the rest from the environment)."""
    if isinstance(settings, kind):
        return settings
    return kind(**dict(settings))
