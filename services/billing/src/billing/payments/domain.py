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
- online payments: the checkout sessions opened for an installment are remembered;
  when its amount changes, or it is paid or cancelled, its open sessions are to be
  expired at the provider; money a session brought is kept as a receipt (once per
  session, however often the provider tells it); it pays the installment only when it
  is exactly the amount due, in its currency, while unpaid: any other receipt (less,
  more, another currency, for a paid or a cancelled installment) never marks it paid,
  and puts it in need of attention (with the reason) until a person resolves it;
- amounts are exact: integer minor units of the opportunity's currency.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from dataclasses import replace as copy_with
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final

from billing.policy.domain import BillingPolicy
from billing.reminders.domain import Reminder, ReminderKind, ReminderSchedule
from gala.contracts.billing import (
    AttentionReason,
    PaymentAttentionResolved,
    PaymentCancelled,
    PaymentDue,
    PaymentEvent,
    PaymentKind,
    PaymentNeedsAttention,
    PaymentOverdue,
    PaymentPaid,
    PaymentScheduled,
    PaymentStatus,
    PaymentUpdated,
)
from gala.errors import Conflict, GalaError, InvalidInput, NotFound
from gala.events.model import Event
from gala.money import InvalidMoney, allocate, from_minor
from gala.values import UNSET, Unset, utc_millis

PAYMENT_ID_NAMESPACE: Final = uuid.UUID("5b0e3c9a-7f1d-4d3e-8a61-3f2b9c4d7e21")
METHOD_MAX: Final = 100
REFERENCE_MAX: Final = 200
NOTE_MAX: Final = 1000
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


class CheckoutState(StrEnum):
    OPEN = "OPEN"
    """Payable at the provider for the amount it was opened with."""
    EXPIRING = "EXPIRING"
    """No longer right (the amount changed, the installment was paid or cancelled): to
    be expired at the provider."""
    EXPIRED = "EXPIRED"
    COMPLETED = "COMPLETED"
    """The provider said it was paid."""


@dataclass(frozen=True)
class CheckoutRef:
    """A checkout session opened for the installment."""

    id: str
    amount_minor: int
    currency: str
    opened_at: datetime
    state: CheckoutState = CheckoutState.OPEN


@dataclass(frozen=True)
class Receipt:
    """Money the payment provider says a checkout session brought."""

    session_id: str
    amount_minor: int | None
    """Minor units of ``currency`` (``None``: the provider did not say)."""
    currency: str | None
    received_at: datetime
    external_id: str
    method: str
    outcome: AttentionReason | None = None
    """Why it did not pay the installment (``None``: it did)."""

    @property
    def amount(self) -> Decimal | None:
        if self.amount_minor is None or self.currency is None:
            return None
        try:
            return from_minor(self.amount_minor, self.currency)
        except (InvalidMoney, ValueError, ArithmeticError):
            return None


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
    checkout_sessions: list[CheckoutRef] = field(default_factory=list)
    receipts: list[Receipt] = field(default_factory=list)
    """Every receipt of money online, in arrival order."""
    needs_attention: bool = False
    attention_reason: AttentionReason | None = None
    """The latest receipt's reason, while it needs attention."""
    attention_note: str | None = None
    """What the person who resolved the latest attention did."""
    attention_resolved_at: datetime | None = None
    attention_resolved_by: str | None = None
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
            self._expire_open_sessions()  # they were opened for the old amount
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

    # --- online payments ----------------------------------------------------------------

    def checkout_opened(
        self, session_id: str, amount_minor: int, currency: str, now: datetime
    ) -> bool:
        """Remember a session opened for ``amount_minor``; one that is no longer right
        (the installment changed meanwhile) is to be expired at once."""
        if any(s.id == session_id for s in self.checkout_sessions):
            return False
        right = self.open and (amount_minor, currency) == (self.amount_minor, self.currency)
        state = CheckoutState.OPEN if right else CheckoutState.EXPIRING
        self.checkout_sessions.append(CheckoutRef(session_id, amount_minor, currency, now, state))
        return True

    def checkout_state(self, session_id: str) -> CheckoutState | None:
        return next((s.state for s in self.checkout_sessions if s.id == session_id), None)

    @property
    def sessions_to_expire(self) -> list[str]:
        return [s.id for s in self.checkout_sessions if s.state is CheckoutState.EXPIRING]

    def sessions_expired(self, session_ids: set[str]) -> bool:
        """The provider expired these sessions (or they were no longer open there)."""
        return self._set_sessions(session_ids, CheckoutState.EXPIRING, CheckoutState.EXPIRED)

    def received_online(self, receipt: Receipt) -> bool:
        """Money a checkout session brought: it pays the installment when it is exactly
        the amount due, in its currency, while unpaid; anything else is kept and needs
        attention. ``False`` when this session's receipt is known already."""
        if any(r.session_id == receipt.session_id for r in self.receipts):
            return False
        if self.status is PaymentStatus.PAID and self.external_payment_id == receipt.external_id:
            return False  # paid by it before receipts were kept
        reason = self._mismatch(receipt)
        self.receipts.append(copy_with(receipt, outcome=reason))
        self._set_sessions({receipt.session_id}, None, CheckoutState.COMPLETED)
        self.updated_at = receipt.received_at
        if reason is None:
            self.external_payment_id = receipt.external_id
            self._move(PaymentStatus.PAID, receipt.received_at, method=receipt.method)
            return True
        self.needs_attention, self.attention_reason = True, reason
        self._record(
            PaymentNeedsAttention,
            reason=reason,
            received_at=receipt.received_at,
            received_amount=receipt.amount,
            received_currency=receipt.currency,
            checkout_session_id=receipt.session_id,
            external_payment_id=receipt.external_id,
        )
        return True

    def resolve_attention(self, *, by: str, note: str, now: datetime) -> bool:
        """A person dealt with it (refunded, settled the difference...); ``False`` when
        nothing needs attention."""
        if not self.needs_attention:
            return False
        note = " ".join(note.split())
        if not note or len(note) > NOTE_MAX:
            raise InvalidPayment(f"Say what was done (1 to {NOTE_MAX} characters).")
        self.needs_attention, self.attention_reason = False, None
        self.attention_note, self.attention_resolved_at, self.attention_resolved_by = note, now, by
        self.updated_at = now
        self._record(PaymentAttentionResolved, resolved_at=now, resolved_by=by, note=note)
        return True

    def _mismatch(self, receipt: Receipt) -> AttentionReason | None:
        if self.status is PaymentStatus.CANCELLED:
            return AttentionReason.CANCELLED
        if self.status is PaymentStatus.PAID:
            return AttentionReason.ALREADY_PAID
        if (receipt.currency or "").upper() != self.currency:
            return AttentionReason.CURRENCY_MISMATCH
        if receipt.amount_minor is None:
            return AttentionReason.AMOUNT_UNKNOWN
        if receipt.amount_minor < self.amount_minor:
            return AttentionReason.UNDERPAID
        if receipt.amount_minor > self.amount_minor:
            return AttentionReason.OVERPAID
        return None

    def _expire_open_sessions(self) -> None:
        self._set_sessions(None, CheckoutState.OPEN, CheckoutState.EXPIRING)

    def _set_sessions(
        self, ids: set[str] | None, before: CheckoutState | None, after: CheckoutState
    ) -> bool:
        """Sessions (of ``ids``, or all) in state ``before`` (or any) move to ``after``."""
        changed = False
        for i, s in enumerate(self.checkout_sessions):
            chosen = (ids is None or s.id in ids) and (before is None or s.state is before)
            if chosen and s.state is not after:
                self.checkout_sessions[i] = copy_with(s, state=after)
                changed = True
        return changed

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
        if status in (PaymentStatus.PAID, PaymentStatus.CANCELLED):
            self._expire_open_sessions()  # nothing more to pay through them
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
                needs_attention=self.needs_attention,
                **extra,
            )
        )


def check_method(method: str) -> str:
    value = " ".join(method.split())
    if not value or len(value) > METHOD_MAX:
        raise InvalidPayment(f"A payment method has 1 to {METHOD_MAX} characters.")
    return value
