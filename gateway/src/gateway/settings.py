"""The gateway's configuration (``GALA_`` environment variables)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from gala.settings import BadConfiguration, Settings

SERVICES = ("contacts", "pipeline", "projects", "chat", "billing", "partners")
DEFAULT_PORTS = {
    "contacts": 8001,
    "pipeline": 8002,
    "projects": 8003,
    "chat": 8004,
    "billing": 8005,
    "partners": 8006,
}
PORT = 8000


class GatewaySettings(Settings):
    # Upstreams: GALA_CONTACTS_URL, GALA_PIPELINE_URL, ...
    contacts_url: str = f"http://127.0.0.1:{DEFAULT_PORTS['contacts']}"
    pipeline_url: str = f"http://127.0.0.1:{DEFAULT_PORTS['pipeline']}"
    projects_url: str = f"http://127.0.0.1:{DEFAULT_PORTS['projects']}"
    chat_url: str = f"http://127.0.0.1:{DEFAULT_PORTS['chat']}"
    billing_url: str = f"http://127.0.0.1:{DEFAULT_PORTS['billing']}"
    partners_url: str = f"http://127.0.0.1:{DEFAULT_PORTS['partners']}"
    upstream_connect_timeout_seconds: float = Field(default=2.0, gt=0)
    upstream_timeout_seconds: float = Field(default=15.0, gt=0)
    upstream_retries: int = Field(default=2, ge=0, description="For idempotent methods only.")
    upstream_pool_size: int = Field(default=100, ge=1)

    # Authentication: Clerk-compatible RS256 session tokens.
    auth_jwks_url: str | None = None
    auth_issuer: str | None = None
    auth_authorized_parties: list[str] = Field(default_factory=list)
    auth_leeway_seconds: int = Field(default=30, ge=0)
    auth_jwks_cache_seconds: float = Field(default=300.0, gt=0)
    auth_directory_cache_seconds: float = Field(default=30.0, ge=0)
    auth_partner_key_cache_seconds: float = Field(
        default=5.0, ge=0, description="How long a partner key's look-up is reused."
    )

    # Development without an identity provider: a local key pair and JWKS.
    auth_dev_mode: bool = False
    auth_dev_key_dir: Path = Path.home() / ".gala" / "dev-auth"

    # Edge protection. Anonymous callers are keyed by their address: what the trusted
    # proxies in front of the gateway (an ingress) say, never what the caller claims.
    trusted_proxies: int = Field(
        default=0, ge=0, description="Proxies (an ingress) in front of the gateway."
    )
    rate_limit_per_minute: int = Field(default=600, ge=1)
    rate_limit_burst: int = Field(default=60, ge=1)
    partner_rate_limit_per_minute: int = Field(default=600, ge=1)
    partner_rate_limit_burst: int = Field(default=60, ge=1)
    max_body_bytes: int = Field(default=1_048_576, ge=1)
    max_upload_bytes: int = Field(default=52_428_800, ge=1)
    cors_origins: list[str] = Field(default_factory=list)
    ws_max_frame_bytes: int = Field(
        default=65_536, ge=1024, description="A chat socket frame larger than this closes it."
    )

    def upstream(self, service: str) -> str:
        url: str = getattr(self, f"{service}_url")
        return url.rstrip("/")

    def public_base_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port_for('gateway', PORT)}"

    def require_identity_provider(self) -> None:
        """Refuse to start (one line) without an identity provider, outside auth dev mode."""
        missing = [
            name
            for name, value in (
                ("GALA_AUTH_JWKS_URL", self.auth_jwks_url),
                ("GALA_AUTH_ISSUER", self.auth_issuer),
            )
            if not value
        ]
        if missing and not self.auth_dev_mode:
            raise BadConfiguration(
                f"bad configuration: {' and '.join(missing)} required"
                " unless GALA_AUTH_DEV_MODE=true"
            )

    def issuer(self) -> str:
        if self.auth_issuer:
            return self.auth_issuer
        if self.auth_dev_mode:
            return f"{self.public_base_url()}/dev"
        raise ValueError("GALA_AUTH_ISSUER is required unless GALA_AUTH_DEV_MODE is on")

    def jwks_url(self) -> str:
        if self.auth_jwks_url:
            return self.auth_jwks_url
        if self.auth_dev_mode:
            return f"{self.public_base_url()}/dev/jwks.json"
        raise ValueError("GALA_AUTH_JWKS_URL is required unless GALA_AUTH_DEV_MODE is on")
