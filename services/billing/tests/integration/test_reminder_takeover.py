"""A reminder fires exactly once even when the worker holding it is SIGKILLed.

Two billing worker processes on one database and consumer group. Worker A claims the
installment, sends the payment-due event, and then hangs on a mail server that never
answers; worker B is started, and A is SIGKILLed while it still holds the claim. When
the claim's lease runs out, B takes the installment over: it does not send the event
again, and it mails the client (once).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from billing.bootstrap import service
from billing.contacts.domain import ContactCopy
from billing.contacts.repository import ContactCopyRepository
from billing.policy.domain import BillingPolicy
from billing.policy.repository import PolicyRepository
from gala.contracts.billing import PAYMENT_TOPIC
from gala.contracts.pipeline import OpportunityWon
from gala.mailsink import MailSink
from gala.settings import Settings
from gala.store import Store
from gala.testing import (
    ServiceProcess,
    TopicTail,
    eventually,
    free_port,
    publish_events,
    start_groups_at_end,
    unique_name,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")
LEASE_SECONDS = 3


@pytest.fixture
async def silent_mail_server() -> AsyncIterator[int]:
    """An SMTP port that accepts connections and never says a word."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in held:
            writer.close()
        server.close()


async def test_a_reminder_fires_once_when_its_worker_is_killed_holding_the_claim(
    infra: Settings, tmp_path: Path, silent_mail_server: int
) -> None:
    database = unique_name("gala_billing_takeover_")
    group = unique_name("gala.billing.takeover-")
    await start_groups_at_end(infra.kafka_bootstrap, group, service.subscriptions.topics)
    store = Store(infra.mongo_url, database)
    venue = unique_name("venue-")
    contact_id, email = str(uuid.uuid4()), f"{uuid.uuid4().hex[:8]}@wed.example"
    policy = BillingPolicy(venue)
    policy.change(
        deposit_percent=Decimal(50),
        deposit_due_days_after_win=0,
        balance_due_days_before_event=0,
        now=datetime.now(UTC),
    )
    assert await PolicyRepository(store).save(policy)
    copy = ContactCopy(contact_id, venue, "Ada Couple", email)
    assert await ContactCopyRepository(store).keep(copy, datetime.now(UTC))

    env = {
        **os.environ,
        "GALA_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
        "GALA_MONGO_URL": infra.mongo_url,
        "GALA_MONGO_DATABASE": database,
        "GALA_CONSUMER_GROUP": group,
        "GALA_CONSUMER_START_FROM": "earliest",
        "GALA_REMINDERS_BEFORE_DUE": '["PT4S"]',
        "GALA_REMINDERS_AFTER_DUE": "[]",
        "GALA_REMINDER_TICK_SECONDS": "0.2",
        "GALA_REMINDER_LEASE_SECONDS": str(LEASE_SECONDS),
        "GALA_SMTP_HOST": "127.0.0.1",
        "GALA_SMTP_TIMEOUT_SECONDS": "120",
    }
    sink = MailSink(tmp_path / "mail", port=free_port())
    worker_a, worker_b = free_port(), free_port()
    a = ServiceProcess(
        "billing",
        {**env, "GALA_BILLING_PORT": str(worker_a), "GALA_SMTP_PORT": str(silent_mail_server)},
        worker_a,
        args=("--role", "worker"),
        log_file=tmp_path / "a.log",
    )
    b = ServiceProcess(
        "billing",
        {**env, "GALA_BILLING_PORT": str(worker_b), "GALA_SMTP_PORT": str(sink.port)},
        worker_b,
        args=("--role", "worker"),
        log_file=tmp_path / "b.log",
    )
    tail = TopicTail(infra.kafka_bootstrap, PAYMENT_TOPIC)
    await tail.start()
    sink.start()
    try:
        await a.start()
        won_at = datetime.now(UTC) + timedelta(seconds=8)
        won = OpportunityWon(
            opportunity_id=str(uuid.uuid4()), venue_id=venue, contact_id=contact_id,
            name="Smith wedding", stage="contract sent", value=Decimal("1000.00"),
            currency="EUR", event_date=won_at + timedelta(days=300), won_at=won_at,
        )  # fmt: skip
        await publish_events(infra.kafka_bootstrap, [(won, won.opportunity_id)])

        payments = store["payments"]

        async def held_by_a():  # the event went out; A hangs on the mail
            query = {"opportunityId": won.opportunity_id, "kind": "DEPOSIT"}
            found = await payments.find_one(query)
            return found if found and found.get("mailsPending") == ["due:4"] else None

        deposit = await eventually(held_by_a, timeout=40)
        await b.start()
        assert await a.kill() == -9  # SIGKILL, mid-send, holding the claim

        due_subject = f"Payment of 500.00 EUR due on {won_at.date().isoformat()}"

        async def mailed():
            return [m for m in sink.sent_to(email) if m["Subject"] == due_subject] or None

        assert len(await eventually(mailed, timeout=40)) == 1
        types = await tail.distinct_types(deposit["_id"], 2)
        assert types == ["gala.payment.scheduled.v1", "gala.payment.due.v1"]
        # nothing more about that reminder, however long we wait past another lease
        with pytest.raises(AssertionError):
            await tail.distinct_types(deposit["_id"], 99, timeout=LEASE_SECONDS + 2)
        types = [e.type for e in tail.distinct(deposit["_id"])]
        assert types.count("gala.payment.due.v1") == 1
        assert len(await mailed()) == 1
        stored = await payments.find_one({"_id": deposit["_id"]})
        assert "due:4" in stored["remindersSent"] and "due:4" not in stored["mailsPending"]
    finally:
        await tail.stop()
        for worker in (a, b):
            if worker.alive:
                await worker.stop()
        sink.stop()
        await store.client.drop_database(database)
        await store.close()
