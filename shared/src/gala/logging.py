"""Structured JSON logs, one object per line, carrying trace and request ids."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from gala import context
from gala.tracing import current_trace_ids

_RECORD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}
_STANDARD_ATTRS = _RECORD_ATTRS | {"color_message"}  # uvicorn's message with terminal colours
RESERVED_PREFIX = "extra_"
"""An ``extra`` key that names a LogRecord attribute is logged under this prefix."""


def safe_extra(extra: Mapping[str, object] | None) -> dict[str, object] | None:
    """``extra`` with every key that ``logging`` reserves renamed (``created`` ->
    ``extra_created``): ``makeRecord`` raises KeyError for those, inside the request
    that logs."""
    if extra is None:
        return None
    return {
        (RESERVED_PREFIX + key if key in _RECORD_ATTRS else key): value
        for key, value in extra.items()
    }


class GuardedLogger(logging.Logger):
    """A logger on which a reserved ``extra`` key can never raise."""

    def makeRecord(
        self,
        name: str,
        level: int,
        fn: str,
        lno: int,
        msg: object,
        args: Any,
        exc_info: Any,
        func: str | None = None,
        extra: Mapping[str, object] | None = None,
        sinfo: str | None = None,
    ) -> logging.LogRecord:
        return super().makeRecord(
            name, level, fn, lno, msg, args, exc_info, func, safe_extra(extra), sinfo
        )


def guard_loggers() -> None:
    """Make every logger, existing and future, a :class:`GuardedLogger`.

    Runs when the kernel is imported, so even a module that made its logger before
    any logging was configured is covered; loggers of another custom class are left
    as they are.
    """
    logging.setLoggerClass(GuardedLogger)
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        if type(logger) is logging.Logger or type(logger) is logging.RootLogger:
            logger.__class__ = (
                GuardedRootLogger if isinstance(logger, logging.RootLogger) else GuardedLogger
            )


class GuardedRootLogger(GuardedLogger, logging.RootLogger):
    """The root logger, guarded."""


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        trace_id, span_id = current_trace_ids()
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
            "trace_id": trace_id,
            "span_id": span_id,
            "request_id": context.request_id.get(),
            "correlation_id": context.correlation_id.get(),
            # while an event is handled, the event's id (it causes what is logged)
            "event_id": context.causation_id.get(),
        }
        entry = {k: v for k, v in entry.items() if v is not None}
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(service: str, level: str = "INFO") -> None:
    guard_loggers()
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "kafka", "pymongo", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
