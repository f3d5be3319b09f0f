"""What other services' events do to the pipeline, on the real broker and store."""

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from gala.contracts.billing import DocumentSigned, PaymentPaid
from gala.contracts.contacts import ContactCreated, ContactErased, ContactUpdated
from gala.events.model import Event
from gala.testing import eventually, publish_event

pytestmark = pytest.mark.asyncio(loop_scope="session")

OPPS = "/api/v1/opportunities"


@pytest.fixture(scope="module")
async def worker(pipeline_worker):
    return pipeline_worker


async def publish(worker, event: Event, subject: str, event_id: str | None = None) -> str:
    return await publish_event(worker.runtime, event, subject, event_id)


def contact_event(kind, venue, contact_id, name="Bride Tobe"):
    return kind(
        contact_id=contact_id, venue_id=venue, name=name, email="b@wed.example",
        lead_source="WEBSITE", status="LEAD", lead_heat=10,
    )  # fmt: skip


async def create_when_known(worker, admin, contact_id, **fields):
    body = {"name": "Summer wedding", "contactId": contact_id, **fields}

    async def created():
        response = await worker.call("POST", OPPS, admin, body)
        return response.json() if response.status_code == 201 else None

    return await eventually(created)


async def test_contact_events_feed_the_projection_and_erasure_forgets_the_name(worker):
    venue, admin = worker.new_venue()
    contact_id = str(uuid.uuid4())
    unknown = await worker.call("POST", OPPS, admin, {"name": "X", "contactId": contact_id})
    assert unknown.status_code == 422
    created_id = str(uuid.uuid4())
    for _ in range(2):  # redelivered
        await publish(
            worker, contact_event(ContactCreated, venue, contact_id), contact_id, created_id
        )
    opportunity = await create_when_known(worker, admin, contact_id)
    assert opportunity["contactName"] == "Bride Tobe"
    await publish(
        worker, contact_event(ContactUpdated, venue, contact_id, "Bride Married"), contact_id
    )

    async def renamed():
        got = (await worker.call("GET", f"{OPPS}/{opportunity['id']}", admin)).json()
        return got["contactName"] == "Bride Married"

    await eventually(renamed)
    # another venue cannot use this contact
    _, stranger = worker.new_venue()
    assert (
        await worker.call("POST", OPPS, stranger, {"name": "X", "contactId": contact_id})
    ).status_code == 422
    erased = ContactErased(contact_id=contact_id, venue_id=venue, erased_at=datetime.now(UTC))
    await publish(worker, erased, contact_id)

    async def forgotten():
        got = (await worker.call("GET", f"{OPPS}/{opportunity['id']}", admin)).json()
        return got["contactName"] is None

    await eventually(forgotten)
    copy = await worker.runtime.store["contacts"].find_one({"_id": contact_id})
    assert copy["erased"] is True and copy["name"] is None
    # an old event delivered late does not bring the person back
    late = await publish(
        worker, contact_event(ContactUpdated, venue, contact_id, "Bride Again"), contact_id
    )
    refused = await worker.call("POST", OPPS, admin, {"name": "X", "contactId": contact_id})
    assert refused.status_code == 422
    await eventually(lambda: _processed(worker, late))
    copy = await worker.runtime.store["contacts"].find_one({"_id": contact_id})
    assert copy["erased"] is True and copy["name"] is None


async def _processed(worker, event_id: str) -> bool:
    return await worker.runtime.store["processed_events"].count_documents({"eventId": event_id}) > 0


async def known_opportunity(worker, **fields):
    venue, admin = worker.new_venue()
    contact_id = await worker.known_contact(venue)
    response = await worker.call(
        "POST", OPPS, admin, {"name": "Gala", "contactId": contact_id, **fields}
    )
    assert response.status_code == 201, response.text
    return response.json(), admin


async def test_a_signed_contract_moves_proposal_sent_to_contract_sent_once(worker):
    opportunity, admin = await known_opportunity(worker, stage="proposal sent")
    early, _ = await known_opportunity(worker, stage="qualified")
    signed = DocumentSigned(
        document_id="doc-1", venue_id=opportunity["venueId"], name="Contract",
        opportunity_id=opportunity["id"], signed_at=datetime.now(UTC),
    )  # fmt: skip
    event_id = str(uuid.uuid4())
    for _ in range(3):
        await publish(worker, signed, "doc-1", event_id)
    await publish(worker, signed, "doc-1")  # the same fact under a new id: still once

    async def moved():
        got = (await worker.call("GET", f"{OPPS}/{opportunity['id']}", admin)).json()
        return got if got["stage"] == "contract sent" else None

    got = await eventually(moved)
    assert got["stageId"] == "contract-sent"
    stored = await worker.runtime.store["opportunities"].find_one({"_id": opportunity["id"]})
    assert stored["version"] == 2  # one change, however many deliveries
    early_signed = DocumentSigned(
        document_id="doc-2", venue_id=early["venueId"], name="Contract",
        opportunity_id=early["id"], signed_at=datetime.now(UTC),
    )  # fmt: skip
    await publish(worker, early_signed, "doc-2")
    await publish(worker, signed, "doc-3")  # a document of another venue's... same venue: no-op
    await eventually(lambda: _handled(worker, "opportunities.hint.signed", 4))
    early_now = await worker.runtime.store["opportunities"].find_one({"_id": early["id"]})
    assert early_now["stageId"] == "qualified"  # only from proposal sent


async def _handled(worker, handler: str, at_least: int) -> bool:
    count = await worker.runtime.store["processed_events"].count_documents({"handler": handler})
    return count >= at_least


async def test_a_payment_moves_an_open_opportunity_to_the_final_stage(worker):
    opportunity, admin = await known_opportunity(worker, stage="site visit")
    paid = PaymentPaid(
        payment_id="pay-1", venue_id=opportunity["venueId"], opportunity_id=opportunity["id"],
        amount=Decimal("500.00"), currency="EUR", paid_at=datetime.now(UTC),
    )  # fmt: skip
    await publish(worker, paid, "pay-1")

    async def moved():
        got = (await worker.call("GET", f"{OPPS}/{opportunity['id']}", admin)).json()
        return got if got["stage"] == "contract sent" else None

    got = await eventually(moved)
    assert got["outcome"] == "OPEN"  # a payment never wins it
    # another venue's payment naming it changes nothing
    _, stranger = worker.new_venue()
    foreign = PaymentPaid(
        payment_id="pay-2", venue_id=stranger.venue_id, opportunity_id=opportunity["id"],
        amount=Decimal("1.00"), currency="EUR", paid_at=datetime.now(UTC),
    )  # fmt: skip
    await publish(worker, foreign, "pay-2")
    await eventually(lambda: _handled(worker, "opportunities.hint.paid", 2))
    stored = await worker.runtime.store["opportunities"].find_one({"_id": opportunity["id"]})
    assert stored["version"] == 2
