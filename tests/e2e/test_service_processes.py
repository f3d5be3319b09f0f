"""Every service runs as its own process, as `make dev` and the cluster run it."""

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import httpx
import pytest

from gala.testing import eventually, free_port

ROOT = Path(__file__).resolve().parents[2]
SERVICES = sorted(p.parent.name for p in (ROOT / "services").glob("*/pyproject.toml"))


@pytest.mark.parametrize("role", ["all", "api", "worker"])
@pytest.mark.parametrize("service", SERVICES)
async def test_service_process_becomes_ready_logs_json_and_stops_cleanly(infra, service, role):
    port = free_port()
    env = {
        **os.environ,
        "GALA_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
        "GALA_MONGO_URL": infra.mongo_url,
        "GALA_MONGO_DATABASE": f"gala_e2e_{service}",
        f"GALA_{service.upper()}_PORT": str(port),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        service,
        "--role",
        role,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:

            async def ready() -> bool:
                try:
                    return (await client.get("/health/ready")).status_code == 200
                except httpx.TransportError:
                    assert process.returncode is None, "the service exited early"
                    return False

            await eventually(ready, timeout=60, interval=0.25)
            assert (await client.get("/health/live")).json() == {"status": "ok"}
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(process.communicate(), 30)
    # uvicorn re-raises the signal it handled once shutdown is complete
    assert process.returncode in (0, -signal.SIGTERM), output.decode()[-3000:]
    lines = [json.loads(line) for line in output.decode().splitlines() if line.strip()]
    started = [line for line in lines if line["msg"] == "service started"]
    assert started and started[0]["service"] == service and started[0]["role"] == role
    assert any(line["msg"] == "Application shutdown complete." for line in lines)
