"""Payment reminders: when they fall, which one to send, and when to look again.

Pure: no I/O. For an installment due at D, with reminders ``before`` (e.g. 7 and 1 days)
and ``after`` (e.g. 3 and 7 days) its due date:

- a payment-due reminder falls at D - b for each b in ``before``;
- at D an unpaid installment becomes OVERDUE (that is the first overdue reminder), and
  overdue reminders fall at D + a for each a in ``after``;
- each reminder is sent at most once (its key is kept in the payment); when several
  fell since the last look (a worker was down), only the latest is sent and the older
  ones are skipped; reminders that fell before the installment existed are skipped;
- a paid or cancelled installment gets no more reminders; moving its due date starts
  its reminders afresh.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class ReminderKind(StrEnum):
    DUE = "due"
    OVERDUE = "overdue"


@dataclass(frozen=True)
class Reminder:
    kind: ReminderKind
    offset: timedelta
    """Before the due date (DUE) or after it (OVERDUE)."""
    at: datetime

    @property
    def key(self) -> str:
        return f"{self.kind.value}:{int(self.offset.total_seconds())}"

    @property
    def becomes_overdue(self) -> bool:
        return self.kind is ReminderKind.OVERDUE and not self.offset


@dataclass(frozen=True)
class ReminderSchedule:
    before: tuple[timedelta, ...]
    after: tuple[timedelta, ...]
    lease: timedelta
    """How long a worker owns a claimed installment (then another one takes over)."""
    mail_retry: timedelta
    mail_max_attempts: int

    def reminders(self, due_date: datetime) -> list[Reminder]:
        """Every reminder of an installment due at ``due_date``, earliest first."""
        due = [Reminder(ReminderKind.DUE, b, due_date - b) for b in set(self.before) if b]
        overdue = [
            Reminder(ReminderKind.OVERDUE, a, due_date + a) for a in {timedelta(0), *self.after}
        ]
        return sorted(due + overdue, key=lambda r: (r.at, r.kind.value))

    def fallen(
        self, due_date: datetime, sent: set[str], created_at: datetime, now: datetime
    ) -> tuple[Reminder | None, list[Reminder]]:
        """The reminder to send now (if any), and every reminder it settles (itself and
        the older unsent ones, which are skipped)."""
        fallen = [r for r in self.reminders(due_date) if r.at <= now and r.key not in sent]
        if not fallen:
            return None, []
        latest = fallen[-1]
        if latest.at < created_at and not latest.becomes_overdue:
            return None, fallen  # fell before the installment existed: nobody to remind
        return latest, fallen

    def next_at(self, due_date: datetime, sent: set[str]) -> datetime | None:
        upcoming = [r.at for r in self.reminders(due_date) if r.key not in sent]
        return min(upcoming) if upcoming else None

    def mail_retry_after(self, attempts: int) -> timedelta:
        """The wait after the ``attempts``-th failed send: doubling."""
        return self.mail_retry * (1 << max(0, attempts - 1))
