"""The delivery engine: every worker replica runs one; each delivery is attempted by
one replica at a time, at least once, and a slow or dead endpoint delays no other.

The loop reads a batch of due deliveries and claims them one by one (a lease in the
store: see the repository) while it has free slots: at most ``webhook_concurrency``
attempts in flight per replica, at most ``webhook_concurrency_per_endpoint`` of them to
one endpoint (endpoints at their limit are skipped, so the others' deliveries go
ahead). Each attempt runs as a task of its own under one deadline (15 s). The loop
wakes when a local write made a delivery (the fan-out, a ping, a redelivery), when an
attempt ends, and every tick otherwise. A replica that dies (even SIGKILLed) loses
nothing: its claims' leases run out and another replica attempts them again (at least
once: the receiver de-duplicates by ``webhook-id``).

After an attempt: a success clears the endpoint's failure streak; a failure starts it
(``failingSince``); a 410 disables the endpoint at once, and an endpoint whose every
attempt failed for ``webhook_disable_after`` (5 days) is disabled: the event
``gala.endpoint.disabled.v1`` goes out with the change, its waiting deliveries fail (a
recovery resends them), and the venue's ADMINs are mailed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
import weakref
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

import prometheus_client

from gala.app import Runtime
from gala.concurrency import save_attempts
from gala.events.outbox import Outbox
from gala.mail import Mail, Mailer, MailFailed, smtp_mailer
from gala.store import Store, utc_now
from partners.deliveries.domain import CLOUDEVENTS_JSON, Attempt, Delivery, RetrySchedule
from partners.deliveries.repository import DeliveryRepository
from partners.deliveries.sender import Sender, guarded_client
from partners.settings import PartnersSettings, partners_settings
from partners.webhooks.domain import DisabledReason, Endpoint
from partners.webhooks.repository import AdminRepository, EndpointRepository

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]

_wakers: weakref.WeakKeyDictionary[Store, asyncio.Event] = weakref.WeakKeyDictionary()


ATTEMPTS = prometheus_client.Counter(
    "gala_webhook_attempts",
    "Webhook delivery attempts, by outcome: delivered (2xx), refused (another status; 410"
    " disables the endpoint), no_answer (timeout, connection error, refused address).",
    ["outcome"],
)
ATTEMPT_DURATION = prometheus_client.Histogram(
    "gala_webhook_attempt_duration_seconds",
    "Time a webhook attempt took, until the answer or the timeout.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0),
)


def outcome_of(attempt: Attempt) -> str:
    if attempt.status_code is None:
        return "no_answer"
    return "delivered" if attempt.succeeded else "refused"


def wake(store: Store) -> None:
    """A delivery was just written to ``store``: this process's engine looks at once."""
    event = _wakers.get(store)
    if event is not None:
        event.set()


def schedule_from(settings: PartnersSettings) -> RetrySchedule:
    return RetrySchedule(
        waits=tuple(settings.webhook_retry_schedule),
        jitter=settings.webhook_retry_jitter,
        max_retry_after=timedelta(seconds=settings.webhook_max_retry_after_seconds),
    )


def disabled_mail(endpoint: Endpoint, to: str) -> Mail:
    reason = {
        DisabledReason.GONE: "its receiver answered 410 Gone",
        DisabledReason.FAILING: "every delivery to it failed since "
        + (endpoint.failing_since.isoformat() if endpoint.failing_since else "a while"),
        DisabledReason.MANUAL: "it was disabled by hand",
    }[endpoint.disabled_reason or DisabledReason.MANUAL]
    return Mail(
        to,
        f"Webhook endpoint disabled: {endpoint.url}",
        f"Hello,\n\nGala stopped sending events to the webhook endpoint {endpoint.url}"
        f" ({endpoint.id}): {reason}.\n\nOnce the receiver works again, enable the endpoint"
        f" (POST /api/v1/partners/webhooks/{endpoint.id}/enable) and resend what it missed"
        f" (POST /api/v1/partners/webhooks/{endpoint.id}/recover).\n",
    )


class DeliveryEngine:
    def __init__(
        self,
        store: Store,
        outbox: Outbox,
        settings: PartnersSettings,
        sender: Sender,
        mailer: Mailer | None,
        clock: Clock = utc_now,
    ) -> None:
        self._store = store
        self._deliveries = DeliveryRepository(store)
        self._endpoints = EndpointRepository(store, outbox)
        self._admins = AdminRepository(store)
        self._settings = settings
        self._sender = sender
        self._mailer = mailer
        self._clock = clock
        self._schedule = schedule_from(settings)
        self._lease = timedelta(seconds=settings.webhook_lease_seconds)
        self._in_flight: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        _wakers[store] = self._wake

    async def run(self) -> None:
        try:
            while True:
                self._wake.clear()
                try:
                    await self.fill()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("claiming deliveries failed; trying again shortly")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._settings.webhook_tick_seconds)
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            _wakers.pop(self._store, None)

    async def fill(self) -> int:
        """Claim due deliveries into free slots; answers how many were started."""
        started = 0
        limit = self._settings.webhook_concurrency_per_endpoint
        while (free := self._settings.webhook_concurrency - len(self._tasks)) > 0:
            busy = [e for e, n in self._in_flight.items() if n >= limit]
            now = self._clock()
            candidates = await self._deliveries.due(now, free * 4, busy)
            claimed = 0
            for candidate in candidates:
                endpoint_id = candidate["endpointId"]
                if len(self._tasks) >= self._settings.webhook_concurrency:
                    break
                if self._in_flight[endpoint_id] >= limit:
                    continue
                token = uuid.uuid4().hex
                delivery = await self._deliveries.claim(candidate["_id"], now, self._lease, token)
                if delivery is None:
                    continue  # another replica took it first
                self._in_flight[endpoint_id] += 1
                task = asyncio.create_task(self._run_attempt(delivery, token))
                self._tasks.add(task)
                task.add_done_callback(self._done(endpoint_id))
                claimed += 1
            started += claimed
            if not claimed:
                break
        return started

    def _done(self, endpoint_id: str) -> Callable[[asyncio.Task[None]], None]:
        def done(task: asyncio.Task[None]) -> None:
            self._tasks.discard(task)
            self._in_flight[endpoint_id] -= 1
            if self._in_flight[endpoint_id] <= 0:
                del self._in_flight[endpoint_id]
            self._wake.set()

        return done

    async def _run_attempt(self, delivery: Delivery, token: str) -> None:
        try:
            await self.attempt(delivery, token)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(
                "delivery attempt failed; its lease runs out and it is tried again",
                extra={"deliveryId": delivery.id},
            )

    async def attempt(self, delivery: Delivery, token: str) -> Attempt | None:
        """One attempt of a claimed delivery, and what follows from it."""
        endpoint = await self._endpoints.get(delivery.venue_id, delivery.endpoint_id)
        if endpoint is None:
            await self._deliveries.forget(delivery, token)
            return None
        if not endpoint.enabled:
            delivery.fail("The endpoint is disabled.")
            await self._deliveries.settle(delivery, token)
            return None
        now = self._clock()
        timestamp = int(now.timestamp())
        body = delivery.body.encode()
        headers = {
            "content-type": CLOUDEVENTS_JSON,
            "webhook-id": delivery.event_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": endpoint.signatures(delivery.event_id, timestamp, body, now),
        }
        attempt = await self._sender.post(endpoint.url, headers, body, now)
        ATTEMPTS.labels(outcome_of(attempt)).inc()
        ATTEMPT_DURATION.observe(attempt.duration_ms / 1000)
        delivery.record(attempt, self._schedule, self._clock())
        if not await self._deliveries.settle(delivery, token):
            log.info("delivery taken over meanwhile", extra={"deliveryId": delivery.id})
            return attempt
        if attempt.succeeded:
            if endpoint.failing_since is not None:
                await self._endpoints.mark_healthy(endpoint.venue_id, endpoint.id)
        elif attempt.gone:
            await self.disable(endpoint.venue_id, endpoint.id, DisabledReason.GONE)
        elif endpoint.failing_since is None:
            await self._endpoints.mark_failing(endpoint.venue_id, endpoint.id, now)
        elif endpoint.failing_for(now) >= self._settings.webhook_disable_after:
            await self.disable(endpoint.venue_id, endpoint.id, DisabledReason.FAILING)
        return attempt

    async def disable(self, venue_id: str, endpoint_id: str, reason: DisabledReason) -> None:
        async for _ in save_attempts():
            endpoint = await self._endpoints.get(venue_id, endpoint_id)
            if endpoint is None or not endpoint.disable(reason, self._clock()):
                return
            if await self._endpoints.save(endpoint):
                break
        else:
            log.error("disabling an endpoint kept conflicting", extra={"endpointId": endpoint_id})
            return
        log.warning(
            "webhook endpoint disabled",
            extra={"endpointId": endpoint_id, "venueId": venue_id, "reason": reason.value},
        )
        await self._deliveries.fail_pending(venue_id, endpoint_id, "The endpoint was disabled.")
        await self._mail_admins(endpoint)

    async def _mail_admins(self, endpoint: Endpoint) -> None:
        addresses = await self._admins.emails_of(endpoint.venue_id)
        if self._mailer is None or not addresses:
            log.info(
                "endpoint disabled: no mail server or no ADMIN address",
                extra={"endpointId": endpoint.id},
            )
            return
        for address in addresses:
            try:
                await self._mailer.send(disabled_mail(endpoint, address))
            except MailFailed as exc:
                log.warning(
                    "mail about a disabled endpoint failed",
                    extra={"endpointId": endpoint.id, "error": str(exc)},
                )

    async def aclose(self) -> None:
        await self._sender.aclose()


def engine_for(runtime: Runtime) -> DeliveryEngine:
    settings = partners_settings(runtime.settings)
    client = guarded_client(
        allow_private=settings.webhook_allow_private_targets,
        connections=settings.webhook_concurrency,
    )
    sender = Sender(client, settings.webhook_timeout_seconds)
    return DeliveryEngine(runtime.store, runtime.outbox, settings, sender, smtp_mailer(settings))


async def deliver_webhooks(runtime: Runtime) -> None:
    """The worker loop (every worker replica runs one)."""
    engine = engine_for(runtime)
    try:
        await engine.run()
    finally:
        await engine.aclose()
