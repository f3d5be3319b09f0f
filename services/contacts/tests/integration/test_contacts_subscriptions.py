"""What other services' events do to contacts, on the real broker and store."""

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from gala.contracts.chat import MessageSent, MessageType
from gala.contracts.pipeline import OpportunityCreated, OpportunityWon
from gala.events.model import Event
from gala.identity import Role
from gala.testing import eventually, publish_event

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="module")
async def worker(contacts_worker):
    return contacts_worker


async def publish(worker, event: Event, subject: str, event_id: str | None = None) -> str:
    return await publish_event(worker.runtime, event, subject, event_id)


async def new_contact(worker):
    _, admin = await worker.new_venue()
    response = await worker.client.post(
        "/api/v1/contacts",
        json={"name": "Bride Tobe", "email": f"{uuid.uuid4().hex[:8]}@wed.example"},
        headers=worker.headers(admin),
    )
    assert response.status_code == 201, response.text
    return response.json(), admin


async def contact_of(worker, admin, contact_id: str) -> dict:
    response = await worker.client.get(
        f"/api/v1/contacts/{contact_id}", headers=worker.headers(admin)
    )
    return response.json() if response.status_code == 200 else {"status": response.status_code}


async def timeline_of(worker, admin, contact_id: str) -> list[dict]:
    response = await worker.client.get(
        f"/api/v1/contacts/{contact_id}/timeline", headers=worker.headers(admin)
    )
    assert response.status_code == 200, response.text
    return response.json()["items"]


def opportunity(kind, contact: dict, **fields):
    values = {
        "opportunity_id": fields.pop("opportunity_id", "opp-1"),
        "venue_id": contact["venueId"],
        "contact_id": contact["id"],
        "name": "Summer wedding",
        "stage": "new inquiry",
        "event_date": datetime.now(UTC) + timedelta(days=20),
        "guest_count": 120,
        "value": Decimal("8000.00"),
        "currency": "EUR",
        **fields,
    }
    return kind(**values)


async def test_an_opportunity_makes_a_lead_and_winning_it_a_customer(worker):
    contact, admin = await new_contact(worker)
    await publish(worker, opportunity(OpportunityCreated, contact), "opp-1")

    async def is_lead() -> dict | None:
        found = await contact_of(worker, admin, contact["id"])
        return found if found["status"] == "LEAD" else None

    lead = await eventually(is_lead)
    rules = {reason["rule"]: reason["points"] for reason in lead["heatReasons"]}
    assert rules == {"source": 5, "event-date": 25, "guests": 10, "value": 10}
    assert lead["leadHeat"] == 50

    won = opportunity(OpportunityWon, contact, won_at=datetime.now(UTC), stage="contract sent")
    event_id = str(uuid.uuid4())
    for _ in range(3):  # redelivered
        await publish(worker, won, "opp-1", event_id=event_id)

    async def is_customer() -> bool:
        return (await contact_of(worker, admin, contact["id"]))["status"] == "CUSTOMER"

    await eventually(is_customer)

    async def history() -> list[str] | None:
        kinds = [entry["kind"] for entry in await timeline_of(worker, admin, contact["id"])]
        return kinds if "opportunity.won" in kinds and len(kinds) >= 5 else None

    kinds = await eventually(history)
    assert kinds.count("opportunity.won") == 1
    assert set(kinds) == {
        "contact.created",
        "contact.status_changed",
        "opportunity.created",
        "opportunity.won",
    }
    assert kinds.count("contact.status_changed") == 2
    assert kinds[-1] == "contact.created"  # newest first


async def test_client_messages_heat_the_contact_once_each(worker):
    contact, admin = await new_contact(worker)

    def message(role: Role) -> MessageSent:
        return MessageSent(
            message_id=str(uuid.uuid4()),
            project_id="p-1",
            venue_id=contact["venueId"],
            sender_id="u-1",
            sender_role=role,
            message_type=MessageType.TEXT,
            sequence=1,
            contact_id=contact["id"],
            sent_at=datetime.now(UTC),
        )

    client_message = message(Role.CLIENT)
    event_id = str(uuid.uuid4())
    await publish(worker, client_message, client_message.message_id, event_id=event_id)
    await publish(worker, client_message, client_message.message_id, event_id=event_id)
    staff_message = message(Role.STAFF)
    await publish(worker, staff_message, staff_message.message_id)

    async def engaged() -> dict | None:
        found = await contact_of(worker, admin, contact["id"])
        reasons = {r["rule"]: r for r in found["heatReasons"]}
        return reasons.get("messages")

    reason = await eventually(engaged)
    assert reason == {"rule": "messages", "points": 2, "detail": "1 client message(s)"}


async def test_an_erased_contact_forgets_its_history_and_ignores_later_events(worker):
    contact, admin = await new_contact(worker)
    await publish(worker, opportunity(OpportunityCreated, contact), "opp-9")

    async def has_history() -> bool:
        return len(await timeline_of(worker, admin, contact["id"])) >= 3

    await eventually(has_history)
    erased = await worker.client.delete(
        f"/api/v1/contacts/{contact['id']}", headers=worker.headers(admin)
    )
    assert erased.status_code == 204

    async def forgotten() -> bool:
        entries = await worker.runtime.store["timeline"].count_documents(
            {"contactId": contact["id"]}
        )
        return entries == 0

    await eventually(forgotten)
    await publish(worker, opportunity(OpportunityWon, contact, won_at=datetime.now(UTC)), "opp-9")
    marker = str(uuid.uuid4())
    later, _ = await new_contact(worker)
    await publish(worker, opportunity(OpportunityCreated, later), "opp-10", event_id=marker)

    async def later_handled() -> bool:
        return (
            await worker.runtime.store["processed_events"].count_documents({"eventId": marker}) > 0
        )

    await eventually(later_handled)  # the won event, published before, was handled too
    stored = await worker.runtime.store["contacts"].find_one({"_id": contact["id"]})
    assert stored["erased"] is True and stored["status"] != "CUSTOMER"
    assert await worker.runtime.store["timeline"].count_documents({"contactId": contact["id"]}) == 0
