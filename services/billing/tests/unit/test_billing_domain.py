"""Payment schedules and payment states, without infrastructure."""

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from billing.payments.domain import (
    CheckoutState,
    InvalidPayment,
    InvalidPaymentTransition,
    Payment,
    PaymentPatch,
    PaymentSettled,
    Receipt,
    WonDeal,
    payment_id_for,
)
from billing.policy.domain import BillingPolicy, InvalidPolicy
from gala.contracts.billing import AttentionReason, PaymentKind, PaymentStatus
from gala.money import allocate

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
EVENT = datetime(2027, 6, 12, 15, 0, tzinfo=UTC)


def deal(value_minor: int | None = 100_001, **fields) -> WonDeal:
    values = {
        "venue_id": "v",
        "opportunity_id": "opp-1",
        "contact_id": "c",
        "value_minor": value_minor,
        "currency": "EUR",
        "event_date": EVENT,
        "won_at": NOW,
    }
    return WonDeal(**{**values, **fields})


def test_allocation_adds_up_exactly_for_any_amount_and_shares():
    rng = random.Random(11)
    for _ in range(2000):
        minor = rng.randrange(0, 10**12)
        shares = [Decimal(rng.randrange(0, 10_000)) / 100 for _ in range(rng.randrange(1, 5))]
        if not any(shares):
            continue
        parts = allocate(minor, shares)
        assert sum(parts) == minor and all(part >= 0 for part in parts)
        total = sum(shares)
        for part, share in zip(parts, shares, strict=True):
            assert abs(part - Decimal(minor) * share / total) < 1


def test_the_default_policy_splits_30_70_with_the_cent_on_the_larger_part():
    deposit, balance = Payment.schedule(deal(), BillingPolicy("v"), NOW)
    assert (deposit.kind, deposit.amount, deposit.due_date) == (
        PaymentKind.DEPOSIT,
        Decimal("300.00"),
        NOW + timedelta(days=7),
    )
    assert (balance.kind, balance.amount, balance.due_date) == (
        PaymentKind.BALANCE,
        Decimal("700.01"),
        EVENT - timedelta(days=14),
    )
    assert deposit.id == payment_id_for("opp-1", PaymentKind.DEPOSIT) != balance.id
    assert [e.TYPE for e in deposit.collect_events()] == ["gala.payment.scheduled.v1"]


def test_a_policy_of_0_or_100_percent_makes_one_installment_and_no_value_none():
    policy = BillingPolicy("v")
    policy.change(
        deposit_percent=Decimal(100),
        deposit_due_days_after_win=0,
        balance_due_days_before_event=0,
        now=NOW,
    )
    assert [p.kind for p in Payment.schedule(deal(), policy, NOW)] == [PaymentKind.DEPOSIT]
    policy.change(
        deposit_percent=Decimal(0),
        deposit_due_days_after_win=0,
        balance_due_days_before_event=0,
        now=NOW,
    )
    assert [p.kind for p in Payment.schedule(deal(), policy, NOW)] == [PaymentKind.BALANCE]
    assert Payment.schedule(deal(None), policy, NOW) == []
    assert Payment.schedule(deal(0), policy, NOW) == []
    for bad in (Decimal("100.5"), Decimal(-1), Decimal("12.345")):
        with pytest.raises(InvalidPolicy):
            policy.change(
                deposit_percent=bad,
                deposit_due_days_after_win=0,
                balance_due_days_before_event=0,
                now=NOW,
            )


def test_the_balance_is_never_due_before_the_deposit():
    soon = deal(event_date=NOW + timedelta(days=3))
    deposit, balance = Payment.schedule(soon, BillingPolicy("v"), NOW)
    assert balance.due_date == deposit.due_date == NOW + timedelta(days=7)


def test_states_move_only_along_their_transitions():
    payment = Payment.schedule(deal(), BillingPolicy("v"), NOW)[0]
    payment.collect_events()
    assert payment.change(PaymentPatch(status=PaymentStatus.OVERDUE), NOW)
    with pytest.raises(InvalidPaymentTransition):
        payment.change(PaymentPatch(status=PaymentStatus.PENDING), NOW)
    assert payment.record(method="cash", reference=None, key="k", now=NOW)
    assert not payment.record(method="cash", reference=None, key="k", now=NOW)
    with pytest.raises(PaymentSettled):
        payment.record(method="cash", reference=None, key="other", now=NOW)
    with pytest.raises(PaymentSettled):
        payment.change(PaymentPatch(amount_minor=5), NOW)
    assert not payment.cancel("lost", NOW)  # paid: kept
    assert [e.TYPE for e in payment.collect_events()] == [
        "gala.payment.overdue.v1",
        "gala.payment.paid.v1",
    ]


def receipt(session: str, amount_minor: int | None, currency: str | None = "EUR") -> Receipt:
    return Receipt(session, amount_minor, currency, NOW, f"pi-{session}", "card")


def deposit() -> Payment:
    payment = Payment.schedule(deal(), BillingPolicy("v"), NOW)[0]  # 300.00 EUR
    payment.collect_events()
    return payment


@pytest.mark.parametrize(
    ("paid", "reason"),
    [
        (receipt("s", 29_999), AttentionReason.UNDERPAID),
        (receipt("s", 30_001), AttentionReason.OVERPAID),
        (receipt("s", 30_000, "USD"), AttentionReason.CURRENCY_MISMATCH),
        (receipt("s", 30_000, None), AttentionReason.CURRENCY_MISMATCH),
        (receipt("s", None), AttentionReason.AMOUNT_UNKNOWN),
    ],
)
def test_money_that_is_not_the_amount_due_never_pays_and_needs_attention(paid, reason):
    payment = deposit()
    assert payment.received_online(paid)
    assert payment.status is PaymentStatus.PENDING and payment.paid_at is None
    assert (payment.needs_attention, payment.attention_reason) == (True, reason)
    assert [r.outcome for r in payment.receipts] == [reason]
    assert not payment.received_online(paid)  # told again: nothing changes
    [event] = payment.collect_events()
    assert event.TYPE == "gala.payment.needs_attention.v1" and event.reason is reason


def test_the_exact_amount_pays_once_and_any_later_money_needs_attention():
    payment = deposit()
    assert payment.received_online(receipt("a", 30_000))
    assert payment.status is PaymentStatus.PAID and not payment.needs_attention
    assert not payment.received_online(receipt("a", 30_000))
    assert payment.received_online(receipt("b", 30_000))
    assert payment.status is PaymentStatus.PAID and payment.external_payment_id == "pi-a"
    assert payment.attention_reason is AttentionReason.ALREADY_PAID
    cancelled = deposit()
    cancelled.cancel("lost", NOW)
    assert cancelled.received_online(receipt("c", 30_000))
    assert cancelled.status is PaymentStatus.CANCELLED
    assert cancelled.attention_reason is AttentionReason.CANCELLED
    with pytest.raises(InvalidPayment):
        cancelled.resolve_attention(by="u", note=" ", now=NOW)
    assert cancelled.resolve_attention(by="u", note="Refunded", now=NOW)
    assert not cancelled.needs_attention and cancelled.attention_reason is None
    assert not cancelled.resolve_attention(by="u", note="again", now=NOW)


def test_open_sessions_are_to_expire_once_they_are_no_longer_right():
    payment = deposit()
    assert payment.checkout_opened("s1", 30_000, "EUR", NOW)
    assert not payment.checkout_opened("s1", 30_000, "EUR", NOW)
    payment.change(PaymentPatch(due_date=NOW + timedelta(days=30)), NOW)
    assert payment.sessions_to_expire == []  # the amount is still right
    payment.change(PaymentPatch(amount_minor=25_000), NOW)
    assert payment.sessions_to_expire == ["s1"]
    # opened for the old amount while it changed: to expire at once
    assert payment.checkout_opened("s2", 30_000, "EUR", NOW)
    assert payment.checkout_opened("s3", 25_000, "EUR", NOW)
    assert payment.sessions_to_expire == ["s1", "s2"]
    assert payment.sessions_expired({"s1", "s2"})
    assert payment.checkout_state("s1") is CheckoutState.EXPIRED
    assert payment.checkout_opened("s4", 25_000, "EUR", NOW)
    assert payment.received_online(receipt("s3", 25_000))  # paid: the other one expires
    assert payment.checkout_state("s3") is CheckoutState.COMPLETED
    assert payment.sessions_to_expire == ["s4"]
    cancelled = deposit()
    cancelled.checkout_opened("s5", 30_000, "EUR", NOW)
    cancelled.cancel("lost", NOW)
    assert cancelled.sessions_to_expire == ["s5"]
    assert cancelled.checkout_opened("s6", 30_000, "EUR", NOW)
    assert cancelled.checkout_state("s6") is CheckoutState.EXPIRING
