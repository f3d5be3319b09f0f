"""When reminders fall and which one is sent, without infrastructure."""

from datetime import UTC, datetime, timedelta

from billing.payments.domain import Payment, WonDeal
from billing.policy.domain import BillingPolicy
from billing.reminders.domain import ReminderKind, ReminderSchedule
from gala.contracts.billing import PaymentStatus

DAY = timedelta(days=1)
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
SCHEDULE = ReminderSchedule(
    before=(7 * DAY, DAY),
    after=(3 * DAY, 7 * DAY),
    lease=timedelta(seconds=60),
    mail_retry=timedelta(seconds=30),
    mail_max_attempts=3,
)


def deposit(due_in: timedelta) -> Payment:
    """A deposit due ``due_in`` from NOW (policy: due right when won)."""
    policy = BillingPolicy("v")
    policy.change(
        deposit_percent=policy.deposit_percent,
        deposit_due_days_after_win=0,
        balance_due_days_before_event=0,
        now=NOW,
    )
    deal = WonDeal("v", "opp", "c", 100_000, "EUR", NOW + 400 * DAY, NOW + due_in)
    payment = Payment.schedule(deal, policy, NOW)[0]
    payment.collect_events()
    payment.replan(SCHEDULE, NOW)
    return payment


def test_reminders_fall_before_at_and_after_the_due_date():
    due = NOW + 10 * DAY
    assert [(r.kind, r.at) for r in SCHEDULE.reminders(due)] == [
        (ReminderKind.DUE, due - 7 * DAY),
        (ReminderKind.DUE, due - DAY),
        (ReminderKind.OVERDUE, due),
        (ReminderKind.OVERDUE, due + 3 * DAY),
        (ReminderKind.OVERDUE, due + 7 * DAY),
    ]


def test_each_reminder_is_sent_once_in_turn_and_the_installment_becomes_overdue():
    payment = deposit(10 * DAY)
    assert payment.next_reminder_at == NOW + 3 * DAY
    sent = []
    for moment in (3, 9, 10, 13, 17):
        now = NOW + moment * DAY
        reminder = payment.remind(SCHEDULE, now)
        assert reminder is not None
        assert payment.remind(SCHEDULE, now) is None  # once
        sent.append((reminder.key, [e.TYPE for e in payment.collect_events()]))
        payment.mailed(reminder.key)
        payment.replan(SCHEDULE, now)
    assert sent == [
        ("due:604800", ["gala.payment.due.v1"]),
        ("due:86400", ["gala.payment.due.v1"]),
        ("overdue:0", ["gala.payment.overdue.v1"]),
        ("overdue:259200", ["gala.payment.overdue.v1"]),
        ("overdue:604800", ["gala.payment.overdue.v1"]),
    ]
    assert payment.status is PaymentStatus.OVERDUE and payment.next_reminder_at is None


def test_after_a_long_pause_only_the_latest_reminder_goes_out():
    payment = deposit(10 * DAY)
    reminder = payment.remind(SCHEDULE, NOW + 12 * DAY)
    assert reminder is not None and reminder.key == "overdue:0"
    assert len(payment.reminders_sent) == 3  # two due reminders skipped
    assert payment.status is PaymentStatus.OVERDUE


def test_reminders_that_fell_before_the_installment_existed_are_skipped():
    payment = deposit(timedelta(hours=12))
    assert payment.next_reminder_at == NOW + timedelta(hours=12) - 7 * DAY  # already past
    assert payment.remind(SCHEDULE, NOW) is None
    payment.replan(SCHEDULE, NOW)
    assert payment.next_reminder_at == NOW + timedelta(hours=12)


def test_a_pending_mail_is_looked_at_again_after_the_lease_then_with_growing_waits():
    payment = deposit(10 * DAY)
    now = NOW + 3 * DAY
    payment.remind(SCHEDULE, now)
    payment.replan(SCHEDULE, now)
    assert payment.next_reminder_at == now + SCHEDULE.lease  # another worker takes over
    assert payment.mail_failed(SCHEDULE)
    payment.replan(SCHEDULE, now)
    assert payment.next_reminder_at == now + timedelta(seconds=30)
    assert payment.mail_failed(SCHEDULE)
    payment.replan(SCHEDULE, now)
    assert payment.next_reminder_at == now + timedelta(seconds=60)
    assert not payment.mail_failed(SCHEDULE)  # given up
    assert payment.mails_pending == []


def test_paid_or_moved_installments_change_what_is_planned():
    payment = deposit(10 * DAY)
    payment.record(method="cash", reference=None, key="k", now=NOW)
    payment.replan(SCHEDULE, NOW)
    assert payment.next_reminder_at is None
    assert payment.remind(SCHEDULE, NOW + 20 * DAY) is None
