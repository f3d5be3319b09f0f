"""The Node.js receiver example (examples/webhook-receiver-node, the ``standardwebhooks``
npm package) verifies a live delivery of the partners service, and refuses a forgery."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gala.settings import Settings
from gala.testing import eventually, free_port

from .webhooks_support import Partners, partners_with, won

pytestmark = pytest.mark.asyncio(loop_scope="session")
EXAMPLE = Path(__file__).resolve().parents[4] / "examples" / "webhook-receiver-node"


@pytest.fixture(scope="module")
async def partners(infra: Settings) -> AsyncIterator[Partners]:
    async with partners_with(infra) as running:
        yield running


class NodeReceiver:
    def __init__(self, secret: str, port: int) -> None:
        self.secret, self.port = secret, port
        self.lines: list[dict[str, Any]] = []
        self.child: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        node = shutil.which("node")
        assert node, "node is not installed (Node.js 18+ runs the receiver example)"
        assert (EXAMPLE / "node_modules" / "standardwebhooks").is_dir(), (
            "the example's packages are missing: run `make node-tools`"
        )
        env = {**os.environ, "WEBHOOK_SECRET": self.secret, "PORT": str(self.port)}
        self.child = await asyncio.create_subprocess_exec(
            node, "receiver.mjs", cwd=EXAMPLE, env=env, stdout=asyncio.subprocess.PIPE
        )
        self._reader = asyncio.create_task(self._read())
        await eventually(self._listening, timeout=20)

    async def _read(self) -> None:
        assert self.child is not None and self.child.stdout is not None
        async for line in self.child.stdout:
            self.lines.append(json.loads(line))

    async def _listening(self) -> bool:
        return any("listening" in line for line in self.lines)

    def requests(self) -> list[dict[str, Any]]:
        return [line for line in self.lines if "verified" in line]

    async def stop(self) -> None:
        if self.child is not None and self.child.returncode is None:
            self.child.terminate()
            await self.child.wait()
        if self._reader is not None:
            await self._reader


async def test_the_node_receiver_verifies_a_live_delivery(partners: Partners) -> None:
    venue, admin = partners.new_venue()
    port = free_port()
    url = f"http://127.0.0.1:{port}/gala"
    endpoint = await partners.add_endpoint(admin, url, ["gala.opportunity.won.v1"])
    node = NodeReceiver(endpoint["secret"], port)
    await node.start()
    try:
        event = won(venue)
        event_id = await partners.publish(event, event.opportunity_id)

        async def received() -> list[dict[str, Any]]:
            return node.requests()

        (line,) = await eventually(received, timeout=30)
        assert line["verified"] is True, line
        assert line["webhookId"] == event_id
        assert line["type"] == "gala.opportunity.won.v1"
        assert line["venue"] == venue and line["subject"] == event.opportunity_id
        assert line["contentType"] == "application/cloudevents+json"
        delivery = await partners.delivery_when(
            admin, endpoint["id"], lambda d: d["status"] == "SUCCEEDED"
        )
        assert delivery["attempts"][-1]["statusCode"] == 204

        # a forged request (another secret's signature) is refused
        async with httpx.AsyncClient() as client:
            forged = await client.post(
                url,
                content=b'{"type":"gala.opportunity.won.v1"}',
                headers={
                    "webhook-id": "forged",
                    "webhook-timestamp": str(int(time.time())),
                    "webhook-signature": "v1,AAAA",
                },
            )
        assert forged.status_code == 400
        assert node.requests()[-1]["verified"] is False
    finally:
        await node.stop()
