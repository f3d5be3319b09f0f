"""The published event contract served by the partners service (real broker and store):
the AsyncAPI document and its page, public, and the page as Debian's headless Chromium
renders it."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import re
import shutil
import struct
import tempfile
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from gala.app import ProcessRole, create_app
from gala.contracts.published import ASYNCAPI_FILE, asyncapi_document
from gala.settings import Settings
from gala.testing import http_server, own_database
from partners.bootstrap import service
from partners.contract.domain import STYLE
from services.partners.tests.integration.conftest import Partners, running

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
async def contract_partners(infra: Settings) -> AsyncIterator[Partners]:
    async with running(infra, ProcessRole.API) as partners:
        yield partners


async def test_the_asyncapi_document_is_public_and_exactly_the_committed_one(contract_partners):
    response = await contract_partners.client.get("/api/v1/events/asyncapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.content == ASYNCAPI_FILE.read_bytes()
    assert response.json()["asyncapi"] == "3.0.0"
    assert response.headers["etag"]
    assert "max-age" in response.headers["cache-control"]


async def test_the_docs_page_shows_every_channel_and_message(contract_partners):
    response = await contract_partners.client.get("/api/v1/events/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = html.unescape(response.text)
    document = asyncapi_document()
    for channel in document["channels"].values():
        assert f"Channel <code>{channel['address']}</code>" in page
    for name, message in document["components"]["messages"].items():
        section = page.split(f"id='message-{re.sub(r'[^A-Za-z0-9_-]', '-', name)}'", 1)[1]
        section = section.split("</section>", 1)[0]
        assert message["summary"].split("``")[0] in section
        assert "<h4>Headers</h4>" in section and "ce_type" in section
        assert "<h4>Payload</h4>" in section
        for field in message["examples"][0]["payload"]:
            assert f"<code>{field}</code>" in section, (name, field)
        assert f'"ce_type": "{name}"' in section  # the example, headers and payload
    assert "Versioning promise" in page


async def test_the_docs_page_loads_nothing_and_runs_nothing(contract_partners):
    response = await contract_partners.client.get("/api/v1/events/docs")
    page = response.text
    assert "<script" not in page.lower()
    assert not re.search(r"<(link|img|iframe|object|embed)\b", page, re.IGNORECASE)
    assert not re.search(r"\ssrc\s*=", page, re.IGNORECASE)
    assert " style=" not in page  # only the one style sheet, allowed by its hash
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy
    digest = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in policy
    assert f"<style>{STYLE}</style>" in page


async def test_the_contract_needs_no_identity(contract_partners):
    # no forwarded identity at all (what the gateway sends for public routes)
    for path in ("/api/v1/events/asyncapi.json", "/api/v1/events/docs"):
        response = await contract_partners.client.get(path, headers={})
        assert response.status_code == 200, path


# --- Debian's headless Chromium ------------------------------------------------------


def png_facts(data: bytes) -> tuple[int, int, int]:
    """(width, height, distinct colours in a sample of rows) of an 8-bit RGB(A) PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    position, chunks, idat = 8, {}, b""
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        if kind == b"IDAT":
            idat += body
        else:
            chunks.setdefault(kind, body)
        position += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert depth == 8 and colour in (2, 6), (depth, colour)
    channels = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * channels
    previous = bytearray(stride)
    colours: set[bytes] = set()
    for row in range(height):
        start = row * (stride + 1)
        method, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if method == 1:
                line[i] = (line[i] + left) & 0xFF
            elif method == 2:
                line[i] = (line[i] + up) & 0xFF
            elif method == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif method == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                guess = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[i] = (line[i] + guess) & 0xFF
        if row % 25 == 0:
            colours.update(bytes(line[i : i + 3]) for i in range(0, stride, channels))
        previous = line
    return width, height, len(colours)


def test_debian_chromium_is_installed():
    assert Path(CHROMIUM).is_file(), "Debian's chromium is missing: run `make chromium`"


async def test_chromium_renders_the_docs_page(infra: Settings):
    async with own_database(service, infra) as settings:
        app = create_app(service, ProcessRole.API, settings)
        async with http_server(app) as base_url:
            url = f"{base_url}/api/v1/events/docs"
            async with httpx.AsyncClient() as client:
                assert (await client.get(url)).status_code == 200
            with tempfile.TemporaryDirectory(prefix="gala-chromium-") as profile:
                shot = Path(profile) / "docs.png"
                child = await asyncio.create_subprocess_exec(
                    CHROMIUM,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    f"--user-data-dir={profile}/data",
                    f"--screenshot={shot}",
                    "--window-size=1280,2000",
                    url,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.STDOUT,
                )
                try:
                    output, _ = await asyncio.wait_for(child.communicate(), 180)
                except TimeoutError:
                    child.kill()
                    await child.wait()
                    raise
                assert child.returncode == 0, output.decode(errors="replace")[-3000:]
                assert shot.is_file(), output.decode(errors="replace")[-3000:]
                data = shot.read_bytes()
                keep = Path(tempfile.gettempdir()) / "gala-event-docs.png"
                shutil.copyfile(shot, keep)  # for a person to look at
    assert len(data) > 20_000, len(data)
    width, height, colours = png_facts(data)
    assert (width, height) == (1280, 2000)
    assert colours > 8, f"a blank page ({colours} colours)"
