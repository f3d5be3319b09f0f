"""``python -m gateway``: serve the gateway (port 8000 unless GALA_GATEWAY_PORT or --port)."""

from __future__ import annotations

import argparse

from gala.app import serve, server_config
from gala.logging import configure_logging
from gala.settings import load_settings
from gala.tracing import configure_tracing
from gateway.app import create_app
from gateway.settings import PORT, GatewaySettings


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m gateway", description="Run the Gala gateway.")
    parser.add_argument("--host", default=None, help="bind address (default: GALA_HOST)")
    parser.add_argument("--port", type=int, default=None, help=f"default {PORT}")
    args = parser.parse_args()
    settings = load_settings(GatewaySettings)
    settings.require_identity_provider()
    configure_logging("gateway", settings.log_level)
    configure_tracing("gateway")
    serve(
        server_config(
            create_app(settings),
            host=args.host or settings.host,
            port=args.port or settings.port_for("gateway", PORT),
            ws_max_size=settings.ws_max_frame_bytes,
        )
    )


main()
