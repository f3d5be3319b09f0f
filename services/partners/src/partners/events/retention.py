"""The worker's retention loop: the store has no TTL indexes (FerretDB), so a sweep
expires the log's events older than ``GALA_EVENT_LOG_RETENTION_DAYS``. Every worker
replica runs it; each of its steps is idempotent, so no lease is needed."""

from __future__ import annotations

from datetime import timedelta

from gala.app import Runtime, keep_polling
from partners.events.repository import EventLogRepository
from partners.events.service import EventLog
from partners.settings import partners_settings


async def expire_old_events(runtime: Runtime) -> None:
    settings = partners_settings(runtime.settings)
    events = EventLog(
        EventLogRepository(runtime.store),
        grace=timedelta(seconds=settings.event_log_gap_grace_seconds),
    )
    retention = timedelta(days=settings.event_log_retention_days)

    async def sweep() -> bool:
        await events.sweep(retention)
        return False  # one pass per interval

    await keep_polling(sweep, settings.event_log_sweep_interval_seconds, "event log retention")
