"""Configuration from the environment (prefix ``GALA_``).

A list setting takes a JSON list or comma-separated values. A secret has no default:
outside an explicit dev mode (``GALA_DEV_MODE=true``, which ``make dev`` and the tests
turn on) a process without its secrets refuses to start, and :func:`load_settings`
says in one line which variable is missing or malformed and what form it takes.
"""

from __future__ import annotations

import json
import os
import re
import types
import typing
from typing import Any, ClassVar, Literal, Self, TypeVar

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

ENV_PREFIX = "GALA_"
DEV_SECRET_PREFIX = "gala-dev-only-"
"""Secrets made up in dev mode start with this: never valid outside it."""


class MissingSecret(ValueError):
    """A secret setting is unset outside dev mode."""


class _EnvSource(EnvSettingsSource):
    """The environment, where a list setting may also be ``a,b,c``."""

    def decode_complex_value(self, field_name: str, field: FieldInfo, value: Any) -> Any:
        if isinstance(value, str) and _is_list(field) and not value.lstrip().startswith("["):
            return [part.strip() for part in value.split(",") if part.strip()]
        return super().decode_complex_value(field_name, field, value)


def _is_list(field: FieldInfo) -> bool:
    annotation = field.annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    return typing.get_origin(annotation) in (list, tuple, set, frozenset)


class Settings(BaseSettings):
    """Settings every service shares; a service subclasses it for its own knobs."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    SECRETS: ClassVar[tuple[str, ...]] = ("internal_token_secret",)
    """Settings a process may not run without, outside dev mode."""

    # An explicit dev mode: made-up secrets instead of refusing to start.
    dev_mode: bool = False

    kafka_bootstrap: str = "127.0.0.1:9092"
    mongo_url: str = "mongodb://127.0.0.1:27017"
    mongo_database: str | None = Field(
        default=None, description="Defaults to gala_<service>: one database per service."
    )
    host: str = "127.0.0.1"
    trusted_proxies: int = Field(
        default=1,
        ge=0,
        description="Proxies in front of this process that append to X-Forwarded-For"
        " (a service: the gateway, plus an ingress in front of it).",
    )
    log_level: str = "INFO"

    # Topics: partitions bound how far one service's consumers can scale out.
    topic_partitions: int = Field(default=3, ge=1)
    topic_replication_factor: int = Field(default=1, ge=1)

    # Consumer group: one per service (gala.<service>) unless overridden. A new group reads
    # each topic from its beginning ("earliest"): nothing published before it joined is
    # missed. Tests isolate themselves with a group of their own that starts at "latest".
    consumer_group: str | None = None
    consumer_start_from: Literal["earliest", "latest"] = "earliest"
    # Group membership: a member that stops heartbeating (killed) is given up after the
    # session timeout, and the group's other members learn of a rebalance at their next
    # heartbeat: both bound how long a replica's death pauses the others (the broker's
    # group.min.session.timeout.ms, 6 s by default, is the floor). A member that stops
    # cleanly leaves the group at once.
    consumer_session_timeout_ms: int = Field(default=6000, ge=1000)
    consumer_heartbeat_interval_ms: int = Field(default=1000, ge=100)

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

    # Metrics (GET /metrics): how often the gauges that read the store or the broker
    # (outbox pending and oldest age, consumer lag) are refreshed.
    metrics_interval_seconds: float = Field(default=15.0, gt=0)

    # Identity forwarded by the gateway.
    internal_token_secret: SecretStr = Field(
        default=SecretStr(""), description="At least 32 characters, shared by every process."
    )
    internal_token_ttl_seconds: int = Field(default=120, ge=1)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, _EnvSource(settings_cls), dotenv_settings, file_secret_settings)

    @model_validator(mode="after")
    def _secrets_present(self) -> Self:
        for name in self.SECRETS:
            value = getattr(self, name)
            if isinstance(value, SecretStr) and value.get_secret_value():
                if not self.dev_mode and value.get_secret_value().startswith(DEV_SECRET_PREFIX):
                    raise MissingSecret(f"{env_name(name)} holds a dev-only value")
                continue
            if not self.dev_mode:
                raise MissingSecret(f"{env_name(name)} is required (or set GALA_DEV_MODE=true)")
            # dev mode: a fixed, published value, so that every local process agrees
            object.__setattr__(self, name, SecretStr(f"{DEV_SECRET_PREFIX}{name}-not-a-secret"))
        return self

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


def env_name(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


class BadConfiguration(SystemExit):
    """A process's settings are missing or malformed: Python prints the one line on
    standard error and the process exits with status 1."""


def load_settings(kind: type[S]) -> S:
    """``kind()`` from the environment, or :class:`BadConfiguration` naming the variable
    that is wrong and what form it takes (instead of a validation traceback)."""
    try:
        return kind()
    except SettingsError as exc:
        match = re.search(r'field "([^"]+)"', str(exc))
        field = match.group(1) if match else "?"
        raise BadConfiguration(
            f"bad configuration: {env_name(field)} cannot be read: {_expected(kind, field)}"
        ) from None
    except ValidationError as exc:
        error = exc.errors()[0]
        if error["type"] == "value_error" and not error["loc"]:
            cause = error.get("ctx", {}).get("error")
            raise BadConfiguration(f"bad configuration: {cause or error['msg']}") from None
        field = str(error["loc"][0]) if error["loc"] else "?"
        raise BadConfiguration(
            f"bad configuration: {env_name(field)}={_shown(kind, field, error.get('input'))}: "
            f"{error['msg']}; {_expected(kind, field)}"
        ) from None


def _shown(kind: type[Settings], field: str, value: object) -> str:
    info = kind.model_fields.get(field)
    if info is not None and "Secret" in str(info.annotation):
        return "<secret>"
    return json.dumps(value) if not isinstance(value, str) else value


def _expected(kind: type[Settings], field: str) -> str:
    info = kind.model_fields.get(field)
    if info is None:
        return "see the README's configuration table"
    form = "a JSON list or comma-separated values" if _is_list(info) else _type_name(info)
    hint = f" ({info.description})" if info.description else ""
    return f"expected {form}{hint}"


def _type_name(info: FieldInfo) -> str:
    annotation = info.annotation
    names = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}
    if annotation in names:
        return names[annotation]
    if typing.get_origin(annotation) is Literal:
        return "one of " + ", ".join(str(a) for a in typing.get_args(annotation))
    return f"a {getattr(annotation, '__name__', str(annotation))}"
