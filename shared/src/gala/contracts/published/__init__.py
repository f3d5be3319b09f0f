"""The committed event contract, as package data of the shared library (every service
image has it): ``schemas/<type>.json`` (one JSON Schema per event type and version) and
``asyncapi.json`` (the AsyncAPI 3.0 document). Written by ``python -m
gala.contracts.publish`` (``make contracts``), never by hand; a test fails on any drift.

Services read these files; they never generate them (generating imports every service).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

PUBLISHED_DIR = Path(__file__).resolve().parent
SCHEMAS_DIR = PUBLISHED_DIR / "schemas"
ASYNCAPI_FILE = PUBLISHED_DIR / "asyncapi.json"


@cache
def asyncapi_bytes() -> bytes:
    """The committed AsyncAPI document, exactly as committed."""
    return ASYNCAPI_FILE.read_bytes()


@cache
def asyncapi_document() -> dict[str, Any]:
    """The committed AsyncAPI document."""
    document: dict[str, Any] = json.loads(asyncapi_bytes())
    return document


def schema_of(event_type: str) -> dict[str, Any]:
    """The committed JSON Schema of one event type and version (KeyError if unpublished)."""
    path = SCHEMAS_DIR / f"{event_type}.json"
    if path.parent != SCHEMAS_DIR or not path.is_file():
        raise KeyError(event_type)
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return schema
