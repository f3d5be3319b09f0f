"""An endpoint whose every attempt fails for the failure window (5 days; 2 s here) is
disabled: an event announces it, what waited fails, and the venue's ADMINs (a copy of
contacts' users, kept from their events) are mailed."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from gala.contracts.contacts import UserCreated, UserRoleChanged
from gala.contracts.partners import ENDPOINT_TOPIC
from gala.identity import Role
from gala.mailsink import MailSink
from gala.settings import Settings
from gala.testing import TopicTail, eventually, free_port
from partners.webhooks.repository import AdminRepository

from .webhooks_support import Answer, Partners, partners_with, receiver, won

pytestmark = pytest.mark.asyncio(loop_scope="session")
WINDOW = 2.0


@pytest.fixture(scope="module")
def sink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailSink]:
    mail = MailSink(tmp_path_factory.mktemp("mail"), port=free_port())
    mail.start()
    try:
        yield mail
    finally:
        mail.stop()


@pytest.fixture(scope="module")
async def partners(infra: Settings, sink: MailSink) -> AsyncIterator[Partners]:
    async with partners_with(
        infra,
        webhook_disable_after=timedelta(seconds=WINDOW),
        webhook_retry_schedule=[timedelta(seconds=0.3)] * 40,
        smtp_host=sink.host,
        smtp_port=sink.port,
    ) as running:
        yield running


def user(venue: str, role: Role, email: str) -> UserCreated:
    return UserCreated(
        user_id=str(uuid.uuid4()), venue_id=venue, email=email, name="Ada", role=role, active=True
    )


async def test_an_endpoint_failing_for_the_whole_window_is_disabled_announced_and_mailed(
    partners: Partners, infra: Settings, sink: MailSink
) -> None:
    venue, admin = partners.new_venue()
    owner, sales, demoted = (f"{uuid.uuid4().hex[:8]}@venue.example" for _ in range(3))
    was_admin = user(venue, Role.ADMIN, demoted)
    for event in (user(venue, Role.ADMIN, owner), user(venue, Role.SALES, sales), was_admin):
        await partners.publish(event, event.user_id)
    fields = was_admin.model_dump(exclude={"role"})
    change = UserRoleChanged(**fields, role=Role.SALES, previous_role=Role.ADMIN)
    await partners.publish(change, change.user_id)
    admins = AdminRepository(partners.runtime.store)

    async def copied() -> bool:
        return await admins.emails_of(venue) == [owner]

    await eventually(copied, timeout=20)

    tail = TopicTail(infra.kafka_bootstrap, ENDPOINT_TOPIC)
    await tail.start()
    try:
        async with receiver(default=Answer(500)) as r:
            endpoint = await partners.add_endpoint(admin, r.url, ["gala.opportunity.*"])
            started = datetime.now(UTC)
            for _ in range(2):
                event = won(venue)
                await partners.publish(event, event.opportunity_id)

            async def disabled() -> dict[str, object] | None:
                found = await partners.endpoint(admin, endpoint["id"])
                return found if not found["enabled"] else None

            found = await eventually(disabled, timeout=30)
            assert found["disabledReason"] == "FAILING"
            failing_since = datetime.fromisoformat(str(found["failingSince"]))
            disabled_at = datetime.fromisoformat(str(found["disabledAt"]))
            assert disabled_at - failing_since >= timedelta(seconds=WINDOW)
            assert failing_since >= started - timedelta(seconds=1)
            assert len(r.received) >= 2 and all(x.status == 500 for x in r.received)

            ((_, envelope),) = await tail.wait_for(endpoint["id"], 1)
            assert envelope.type == "gala.endpoint.disabled.v1"
            announced = json.loads(envelope.data)
            assert announced["reason"] == "FAILING" and announced["url"] == r.url
            assert announced["failingSince"] is not None

            log = await partners.deliveries(admin, endpoint["id"])
            assert {d["status"] for d in log} == {"FAILED"}

            async def mailed() -> list[object]:
                return list(sink.sent_to(owner))

            (mail,) = await eventually(mailed, timeout=10)
            assert r.url in str(mail["Subject"])
            assert endpoint["id"] in mail.get_content()
            assert sink.sent_to(sales) == [] and sink.sent_to(demoted) == []
    finally:
        await tail.stop()
