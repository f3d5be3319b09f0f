"""Payments: the installments a won opportunity is paid in.

Pure: no I/O. Rules:

- a won opportunity's value is scheduled once, by the venue's policy: a deposit (its
  percentage of the value, due some days after winning) and the balance (the rest,
  due some days before the event, never before the deposit); the installments add up
  to the value exactly, to the minor unit (``gala.money.allocate``); an installment's id
  derives from the opportunity and its kind, so scheduling again makes nothing new;
- more installments can be added by hand (``EXTRA``);
- status moves PENDING -> PAID, PENDING -> OVERDUE -> PAID, PENDING or OVERDUE ->
  CANCELLED; anything else is a conflict; a paid or cancelled installment changes no
  more;
- recording a payment names an idempotency key: the same key again answers the same
  payment and changes nothing; another key on a paid installment is a conflict;
- amounts are exact: integer minor units of the opportunity's currency.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from billing.policy.domain import BillingPolicy
from billing.reminders.domain import Reminder, ReminderKind, ReminderSchedule
from gala.contracts.billing import (
    PaymentCancelled,
    PaymentDue,
    PaymentEvent,
    PaymentKind,
    PaymentOverdue,
    PaymentPaid,
    PaymentScheduled,
    PaymentStatus,
    PaymentUpdated,
)
from gala.errors import Conflict, GalaError, InvalidInput, NotFound
from gala.events.model import Event
from gala.money import allocate, from_minor
from gala.values import UNSET, Unset, utc_millis

PAYMENT_ID_NAMESPACE: Final = uuid.UUID("5b0e3c9a-7f1d-4d3e-8a61-3f2b9c4d7e21")
METHOD_MAX: Final = 100
REFERENCE_MAX: Final = 200
TRANSITIONS: Final = {
    PaymentStatus.PENDING: {PaymentStatus.PAID, PaymentStatus.OVERDUE, PaymentStatus.CANCELLED},
    PaymentStatus.OVERDUE: {PaymentStatus.PAID, PaymentStatus.CANCELLED},
    PaymentStatus.PAID: set(),
    PaymentStatus.CANCELLED: set(),
}


class PaymentError(GalaError):
    """Base of the payments module's errors."""


class InvalidPayment(PaymentError, InvalidInput):
    pass


class PaymentNotFound(PaymentError, NotFound):
    def __init__(self) -> None:
        super().__init__("No such payment in this venue.")


class InvalidPaymentTransition(PaymentError, Conflict):
    def __init__(self, current: PaymentStatus, wanted: PaymentStatus) -> None:
        super().__init__(
            f"A payment cannot go from {current.value} to {wanted.value}.",
            paymentStatus=current,
            allowed=sorted(s.value for s in TRANSITIONS[current]),
        )


class PaymentSettled(PaymentError, Conflict):
    def __init__(self, status: PaymentStatus) -> None:
        super().__init__(
            f"The payment is {status.value}: it changes no more.", paymentStatus=status
        )


class PaymentChangedConcurrently(PaymentError, Conflict):
    def __init__(self) -> None:
        super().__init__("The payment kept changing while this change was applied; retry.")


def payment_id_for(opportunity_id: str, kind: PaymentKind) -> str:
    """The id of a scheduled installment: the same however often it is scheduled."""
    return str(uuid.uuid5(PAYMENT_ID_NAMESPACE, f"{opportunity_id}|{kind.value}"))


@dataclass(frozen=True)
class WonDeal:
    """What a won opportunity tells billing."""

    venue_id: str
    opportunity_id: str
    contact_id: str | None
    value_minor: int | None
    currency: str
    event_date: datetime | None
    won_at: datetime
    project_id: str | None = None


@dataclass(frozen=True)
class PaymentPatch:
    amount_minor: int | Unset = UNSET
    due_date: datetime | Unset = UNSET
    status: PaymentStatus | Unset = UNSET
    payment_method: str | Unset | None = UNSET


@dataclass
class Payment:
    id: str
    venue_id: str
    opportunity_id: str
    kind: PaymentKind
    amount_minor: int
    currency: str
    due_date: datetime
    created_at: datetime
    updated_at: datetime
    contact_id: str | None = None
    project_id: str | None = None
    status: PaymentStatus = PaymentStatus.PENDING
    paid_at: datetime | None = None
    payment_method: str | None = None
    external_payment_id: str | None = None
    reference: str | None = None
    idempotency_key: str | None = None
    """The key the payment was recorded with (a repeat with it changes nothing)."""
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    reminders_sent: list[str] = field(default_factory=list)
    """Keys of the reminders sent (or skipped) for the current due date."""
    mails_pending: list[str] = field(default_factory=list)
    """Keys of sent reminders whose mail to the client has not gone out yet."""
    mail_attempts: int = 0
    next_reminder_at: datetime | None = None
    """When a reminder worker should look at this installment again."""
    version: int = 1
    pending_events: list[Event] = field(default_factory=list)

    @property
    def amount(self) -> Decimal:
        return from_minor(self.amount_minor, self.currency)

    @property
    def open(self) -> bool:
        return self.status in (PaymentStatus.PENDING, PaymentStatus.OVERDUE)

    # --- creation ---------------------------------------------------------------------

    @classmethod
    def schedule(cls, deal: WonDeal, policy: BillingPolicy, now: datetime) -> list[Payment]:
        """The deal's installments by the policy (none when it has no value)."""
        if not deal.value_minor:
            return []
        deposit_share = policy.deposit_percent / Decimal(100)
        deposit, balance = allocate(deal.value_minor, [deposit_share, 1 - deposit_share])
        deposit_due = deal.won_at + timedelta(days=policy.deposit_due_days_after_win)
        event_date = deal.event_date or deposit_due
        balance_due = max(
            event_date - timedelta(days=policy.balance_due_days_before_event), deposit_due
        )
        plan = [
            (PaymentKind.DEPOSIT, deposit, deposit_due),
            (PaymentKind.BALANCE, balance, balance_due),
        ]
        return [
            cls._new(deal, payment_id_for(deal.opportunity_id, kind), kind, amount, due, now)
            for kind, amount, due in plan
            if amount > 0
        ]

    @classmethod
    def extra(cls, deal: WonDeal, amount_minor: int, due_date: datetime, now: datetime) -> Payment:
        if amount_minor <= 0:
            raise InvalidPayment("An installment's amount must be more than zero.")
        return cls._new(deal, str(uuid.uuid4()), PaymentKind.EXTRA, amount_minor, due_date, now)

    @classmethod
    def _new(
        cls,
        deal: WonDeal,
        payment_id: str,
        kind: PaymentKind,
        amount_minor: int,
        due_date: datetime,
        now: datetime,
    ) -> Payment:
        payment = cls(
            id=payment_id,
            venue_id=deal.venue_id,
            opportunity_id=deal.opportunity_id,
            contact_id=deal.contact_id,
            project_id=deal.project_id,
            kind=kind,
            amount_minor=amount_minor,
            currency=deal.currency,
            due_date=utc_millis(due_date),
            created_at=now,
            updated_at=now,
        )
        payment._record(PaymentScheduled)
        return payment

    # --- changes ----------------------------------------------------------------------

    def change(self, patch: PaymentPatch, now: datetime) -> bool:
        """Change the amount or due date (while unpaid) and/or the status."""
        details = not isinstance(patch.amount_minor, Unset) or not isinstance(patch.due_date, Unset)
        if details and not self.open:
            raise PaymentSettled(self.status)
        changed = False
        if not isinstance(patch.amount_minor, Unset) and patch.amount_minor != self.amount_minor:
            if patch.amount_minor <= 0:
                raise InvalidPayment("An installment's amount must be more than zero.")
            self.amount_minor = patch.amount_minor
            changed = True
        if not isinstance(patch.due_date, Unset) and utc_millis(patch.due_date) != self.due_date:
            self.due_date = utc_millis(patch.due_date)
            self.reminders_sent, self.mails_pending = [], []  # afresh, for the new date
            changed = True
        if changed:
            self.updated_at = now
            self._record(PaymentUpdated)
        if not isinstance(patch.status, Unset) and patch.status != self.status:
            method = None if isinstance(patch.payment_method, Unset) else patch.payment_method
            changed |= self._move(patch.status, now, method=method or "manual")
        return changed

    def record(self, *, method: str, reference: str | None, key: str, now: datetime) -> bool:
        """Record an offline payment under ``key``; ``False`` when ``key`` already did."""
        if self.status is PaymentStatus.PAID:
            if self.idempotency_key == key:
                return False
            raise PaymentSettled(self.status)
        if PaymentStatus.PAID not in TRANSITIONS[self.status]:
            raise InvalidPaymentTransition(self.status, PaymentStatus.PAID)
        self.reference = reference
        self.idempotency_key = key
        return self._move(PaymentStatus.PAID, now, method=method)

    def paid_online(self, *, method: str, external_id: str, at: datetime) -> bool:
        """Paid through the payment provider; ``False`` when this payment already was."""
        if self.status is PaymentStatus.PAID and self.external_payment_id == external_id:
            return False
        self.external_payment_id = external_id
        return self._move(PaymentStatus.PAID, at, method=method)

    def cancel(self, reason: str | None, now: datetime) -> bool:
        """Cancel it unless it is paid or cancelled already; ``True`` if it was cancelled."""
        if not self.open:
            return False
        self.cancel_reason = reason
        return self._move(PaymentStatus.CANCELLED, now)

    def _move(self, status: PaymentStatus, now: datetime, method: str | None = None) -> bool:
        if status == self.status:
            return False
        if status not in TRANSITIONS[self.status]:
            raise InvalidPaymentTransition(self.status, status)
        self.status = status
        self.updated_at = now
        if status is PaymentStatus.PAID:
            self.paid_at = now
            self.payment_method = method
            self._record(
                PaymentPaid,
                paid_at=now,
                payment_method=method,
                external_payment_id=self.external_payment_id,
            )
        elif status is PaymentStatus.CANCELLED:
            self.cancelled_at = now
            self._record(PaymentCancelled, cancelled_at=now, reason=self.cancel_reason)
        elif status is PaymentStatus.OVERDUE:
            self._record(PaymentOverdue, days_overdue=max(0, (now - self.due_date).days))
        return True

    # --- reminders --------------------------------------------------------------------

    def remind(self, schedule: ReminderSchedule, now: datetime) -> Reminder | None:
        """Send the reminder that fell (if any): its event, and its mail to come; an
        unpaid installment past its due date becomes OVERDUE."""
        if not self.open:
            return None
        reminder, settled = schedule.fallen(
            self.due_date, set(self.reminders_sent), self.created_at, now
        )
        self.reminders_sent += [r.key for r in settled]
        if reminder is None:
            return None
        if reminder.becomes_overdue and self.status is PaymentStatus.OVERDUE:
            return None  # made overdue by hand already (its event went out then)
        if self.status is PaymentStatus.PENDING and reminder.kind is ReminderKind.OVERDUE:
            self._move(PaymentStatus.OVERDUE, now)
        elif reminder.kind is ReminderKind.OVERDUE:
            self._record(PaymentOverdue, days_overdue=reminder.offset.days)
        else:
            self._record(PaymentDue, days_before=reminder.offset.days)
        self.mails_pending.append(reminder.key)
        self.mail_attempts = 0
        return reminder

    def mailed(self, key: str) -> None:
        if key in self.mails_pending:
            self.mails_pending.remove(key)
        self.mail_attempts = 0

    def mail_failed(self, schedule: ReminderSchedule) -> bool:
        """One more failed send; ``False`` (and the mails dropped) once attempts run out."""
        self.mail_attempts += 1
        if self.mail_attempts >= schedule.mail_max_attempts:
            self.mails_pending, self.mail_attempts = [], 0
            return False
        return True

    def replan(self, schedule: ReminderSchedule, now: datetime) -> None:
        """When a worker should look again: the next reminder, or sooner for a pending
        mail (after the lease while being sent, so that another worker takes over if this
        one dies; later after a failed send)."""
        if not self.open:
            self.next_reminder_at, self.mails_pending = None, []
            return
        moments = []
        upcoming = schedule.next_at(self.due_date, set(self.reminders_sent))
        if upcoming is not None:
            moments.append(upcoming)
        if self.mails_pending:
            wait = (
                schedule.mail_retry_after(self.mail_attempts)
                if self.mail_attempts
                else schedule.lease
            )
            moments.append(now + wait)
        self.next_reminder_at = min(moments) if moments else None

    # --- events -----------------------------------------------------------------------

    def collect_events(self) -> list[Event]:
        events, self.pending_events = self.pending_events, []
        return events

    def _record(self, kind: type[PaymentEvent], **extra: Any) -> None:
        self.pending_events.append(
            kind(
                payment_id=self.id,
                venue_id=self.venue_id,
                opportunity_id=self.opportunity_id,
                contact_id=self.contact_id,
                project_id=self.project_id,
                amount=self.amount,
                currency=self.currency,
                kind=self.kind,
                status=self.status,
                due_date=self.due_date,
                **extra,
            )
        )


def check_method(method: str) -> str:
    value = " ".join(method.split())
    if not value or len(value) > METHOD_MAX:
        raise InvalidPayment(f"A payment method has 1 to {METHOD_MAX} characters.")
    return value
