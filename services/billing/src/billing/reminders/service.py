"""The reminder worker: runs in every worker replica, each reminder goes out once.

Each tick a worker claims installments whose look-again time has come (an atomic
update that moves that time past a lease: the installment is this worker's until
then; if the worker dies, another one takes it over when the lease runs out). For each
it sends the reminder that fell (the event is saved with the installment's new state in
one version-checked write: exactly once, however many workers race), then mails the
client (at least once: a send that fails is retried later with a growing wait, and
never holds up the other reminders), then lets go.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from prometheus_client import Counter, Gauge

from billing.contacts.repository import ContactCopyRepository
from billing.deals.repository import DealRepository
from billing.payments.domain import Payment
from billing.payments.repository import PaymentRepository
from billing.reminders.domain import ReminderKind, ReminderSchedule
from billing.reminders.mail import Mailer, MailFailed, mailer_from, reminder_mail
from billing.settings import BillingSettings, billing_settings
from gala.app import Runtime, keep_polling
from gala.concurrency import save_attempts
from gala.store import utc_now

REMINDERS_DUE = Gauge(
    "gala_reminders_due",
    "Installments whose next reminder time has come and that no worker has taken yet.",
)
REMINDERS_FIRED = Counter(
    "gala_reminders_fired", "Payment reminders sent, by kind (due, overdue).", ["kind"]
)
log = logging.getLogger(__name__)
Clock = Callable[[], datetime]


def schedule_from(settings: BillingSettings) -> ReminderSchedule:
    return ReminderSchedule(
        before=tuple(settings.reminders_before_due),
        after=tuple(settings.reminders_after_due),
        lease=timedelta(seconds=settings.reminder_lease_seconds),
        mail_retry=timedelta(seconds=settings.reminder_mail_retry_seconds),
        mail_max_attempts=settings.reminder_mail_max_attempts,
    )


class ReminderWorker:
    def __init__(
        self,
        payments: PaymentRepository,
        deals: DealRepository,
        contacts: ContactCopyRepository,
        mailer: Mailer | None,
        settings: BillingSettings,
        clock: Clock = utc_now,
    ) -> None:
        self._payments = payments
        self._deals = deals
        self._contacts = contacts
        self._mailer = mailer
        self._settings = settings
        self._schedule = schedule_from(settings)
        self._clock = clock

    async def run_once(self) -> int:
        """Claim and handle up to a batch of installments; answers how many."""
        REMINDERS_DUE.set(await self._payments.count_due(self._clock()))
        claimed: list[Payment] = []
        for _ in range(self._settings.reminder_batch):
            payment = await self._payments.claim_due(self._clock(), self._schedule.lease)
            if payment is None:
                break
            claimed.append(payment)
        results = await asyncio.gather(*(self._handle(p) for p in claimed), return_exceptions=True)
        for payment, result in zip(claimed, results, strict=True):
            if isinstance(result, Exception):
                log.error(
                    "payment reminder failed; another tick takes it over after the lease",
                    extra={"paymentId": payment.id},
                    exc_info=result,
                )
        return len(claimed)

    async def _handle(self, payment: Payment) -> None:
        now = self._clock()
        reminder = payment.remind(self._schedule, now)
        payment.replan(self._schedule, now)
        if not await self._payments.save(payment):
            return  # changed meanwhile: that change planned its reminders again
        if reminder is not None:
            REMINDERS_FIRED.labels(reminder.kind.value).inc()
            log.info(
                "payment reminder",
                extra={"paymentId": payment.id, "reminder": reminder.key},
            )
        if payment.mails_pending:
            await self._mail(payment)

    async def _mail(self, payment: Payment) -> None:
        sent: list[str] = []
        failed = False
        contact = (
            await self._contacts.get(payment.venue_id, payment.contact_id)
            if payment.contact_id
            else None
        )
        if self._mailer is None or contact is None or contact.erased or not contact.email:
            log.info(
                "payment reminder not mailed: no mail server or no address",
                extra={"paymentId": payment.id},
            )
            sent = list(payment.mails_pending)  # nothing will ever send them
        else:
            deal = await self._deals.get(payment.venue_id, payment.opportunity_id)
            for key in payment.mails_pending:
                kind = ReminderKind(key.split(":", 1)[0])
                mail = reminder_mail(
                    self._settings,
                    kind,
                    to=contact.email,
                    name=contact.name,
                    amount=str(payment.amount),
                    currency=payment.currency,
                    due_date=payment.due_date.date().isoformat(),
                    event=deal.name if deal else None,
                )
                try:
                    await self._mailer.send(mail)
                except MailFailed as exc:
                    log.warning(
                        "payment reminder mail failed; will retry",
                        extra={"paymentId": payment.id, "error": str(exc)},
                    )
                    failed = True
                    break
                sent.append(key)
        await self._settle_mail(payment, sent, failed)

    async def _settle_mail(self, payment: Payment, sent: list[str], failed: bool) -> None:
        async for _ in save_attempts():
            current = await self._payments.get(payment.venue_id, payment.id)
            if current is None:
                return
            for key in sent:
                current.mailed(key)
            if failed and not current.mail_failed(self._schedule):
                log.error("payment reminder mail given up", extra={"paymentId": payment.id})
            current.replan(self._schedule, self._clock())
            if await self._payments.save(current):
                return


async def send_reminders(runtime: Runtime) -> None:
    """The worker loop (every worker replica runs one)."""
    settings = billing_settings(runtime.settings)
    worker = ReminderWorker(
        PaymentRepository(runtime.store, runtime.outbox),
        DealRepository(runtime.store),
        ContactCopyRepository(runtime.store),
        mailer_from(settings),
        settings,
    )

    async def run_once() -> bool:
        return await worker.run_once() >= settings.reminder_batch  # more may be due

    await keep_polling(run_once, settings.reminder_tick_seconds, "payment reminders")
