"""A reserved ``extra`` key never raises: it is logged under a prefix."""

from __future__ import annotations

import io
import json
import logging

import pytest

import gala  # noqa: F401  (the kernel guards loggers when imported)
from gala.logging import JsonFormatter, guard_loggers, safe_extra

RESERVED = [
    "created",
    "name",
    "msg",
    "args",
    "module",
    "filename",
    "levelname",
    "process",
    "thread",
    "message",
    "asctime",
    "exc_info",
    "lineno",
    "funcName",
    "taskName",
]


@pytest.mark.parametrize("key", RESERVED)
def test_a_reserved_extra_key_is_logged_under_a_prefix(key: str) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("test"))
    logger = logging.getLogger(f"gala.test.reserved.{key}")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("submitted", extra={key: "value", "contactId": "c1"})
    finally:
        logger.removeHandler(handler)
    entry = json.loads(stream.getvalue())
    assert entry["msg"] == "submitted"
    assert entry[f"extra_{key}"] == "value"
    assert entry["contactId"] == "c1"


def test_loggers_made_before_the_kernel_and_the_root_are_guarded() -> None:
    early = logging.Logger.manager.getLogger("gala.test.made-early")
    early.__class__ = logging.Logger  # as if made before the kernel was imported
    guard_loggers()
    logging.getLogger("gala.test.made-early").warning("x", extra={"created": 1})
    logging.getLogger().warning("x", extra={"module": "m"})


def test_safe_extra_leaves_other_keys_alone() -> None:
    assert safe_extra({"created": 1, "createdAt": 2}) == {"extra_created": 1, "createdAt": 2}
    assert safe_extra(None) is None
