"""A project's client list decides who sees its billing, both ways: a CLIENT taken off
the project loses its payments, checkouts, documents, download links and signing within
seconds; one added gains them; an older project event arriving late changes nothing."""

import dataclasses
import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from gala.contracts.projects import ProjectCreated, ProjectStatusChanged, ProjectUpdated
from gala.events.model import Event
from gala.identity import Principal, Role
from gala.testing import envelope_of_event, eventually

from .test_documents import PDF, upload

pytestmark = pytest.mark.asyncio(loop_scope="session")
PAYMENTS = "/api/v1/payments"
DOCS = "/api/v1/documents"
WITHIN = 5.0
"""Seconds a change of the client list may take to show."""


async def publish_at(billing, event: Event, subject: str, at: datetime) -> None:
    """Publish ``event`` as projects would, stamped ``at`` (an event arriving late)."""
    envelope = dataclasses.replace(envelope_of_event(event, subject), time=at)
    await billing.runtime.publisher.publish(event.TOPIC, envelope)


def project_event(kind, won, project_id: str, client_ids: list[str], **fields):
    values = dict(
        project_id=project_id, venue_id=won.venue_id, opportunity_id=won.opportunity_id,
        name="Smith wedding", status="ACTIVE", start_date=won.event_date,
        end_date=won.event_date, client_ids=client_ids,
    )  # fmt: skip
    return kind(**{**values, **fields})


async def what_the_client_gets(
    billing, client: Principal, deposit: dict, document: dict, link: str
) -> dict[str, object]:
    """Every CLIENT route of billing, as this client (status codes, and list sizes)."""
    sign = {"signerName": "Ada Couple", "consent": True, "sha256": document["sha256"]}
    listed = await billing.call("GET", PAYMENTS, client)
    documents = await billing.call("GET", DOCS, client)
    download: httpx.Response = await billing.client.get(link)
    return {
        "payments": len(listed.json()["items"]),
        "payment": (await billing.call("GET", f"{PAYMENTS}/{deposit['id']}", client)).status_code,
        "checkout": (
            await billing.call("POST", f"{PAYMENTS}/{deposit['id']}/checkout", client)
        ).status_code,
        "documents": len(documents.json()["items"]),
        "document": (await billing.call("GET", f"{DOCS}/{document['id']}", client)).status_code,
        "download": download.status_code,
        "sign": (
            await billing.call("POST", f"{DOCS}/{document['id']}/sign", client, sign)
        ).status_code,
    }


GONE = {
    "payments": 0, "payment": 404, "checkout": 404, "documents": 0, "document": 404,
    "download": 403, "sign": 404,
}  # fmt: skip


async def test_a_client_taken_off_the_project_loses_its_billing_and_regains_it(
    billing_with_stripe,
):
    billing = billing_with_stripe
    venue, admin = billing.new_venue()
    won, (deposit, _) = await billing.win(venue)
    client = billing.member(venue, Role.CLIENT)
    partner = billing.member(venue, Role.CLIENT)  # stays on the project throughout
    project_id = f"project-{won.opportunity_id}"
    start = datetime.now(UTC)
    created = project_event(ProjectCreated, won, project_id, [client.user_id, partner.user_id])
    await publish_at(billing, created, project_id, start)

    async def sees_its_payments():
        mine = await billing.call("GET", PAYMENTS, client)
        return len(mine.json()["items"]) == 2

    await eventually(sees_its_payments, timeout=30)
    uploaded = await upload(billing, admin, projectId=project_id)
    assert uploaded.status_code == 201, uploaded.text
    contract = uploaded.json()
    assert contract["sha256"] == hashlib.sha256(PDF).hexdigest()
    mine = (await billing.call("GET", f"{DOCS}/{contract['id']}", client)).json()
    link = mine["url"]  # the client's own link, issued while on the project
    assert "&client=" in link
    assert (await billing.client.get(link)).status_code == 200

    # taken off: every route answers "not yours" within seconds, the link issued stops
    removed = project_event(ProjectUpdated, won, project_id, [partner.user_id])
    await publish_at(billing, removed, project_id, start + timedelta(seconds=1))

    async def gone():
        got = await what_the_client_gets(billing, client, deposit, contract, link)
        return got == GONE or None

    await eventually(gone, timeout=WITHIN)
    # the one who stays keeps it all
    assert len((await billing.call("GET", PAYMENTS, partner)).json()["items"]) == 2
    assert (await billing.call("GET", f"{DOCS}/{contract['id']}", partner)).status_code == 200

    # an older event (arriving late) naming the client does not bring them back
    stale = project_event(ProjectUpdated, won, project_id, [client.user_id, partner.user_id])
    await publish_at(billing, stale, project_id, start + timedelta(milliseconds=500))
    marker = project_event(  # on the same partition, after the stale one: once it is kept,
        ProjectCreated, won, project_id, [],  # the stale one was handled
        opportunity_id=str(uuid.uuid4()),
    )  # fmt: skip
    await publish_at(billing, marker, project_id, start)

    async def marker_kept():
        return await billing.runtime.store["deals"].find_one({"_id": marker.opportunity_id})

    await eventually(marker_kept, timeout=30)
    assert await what_the_client_gets(billing, client, deposit, contract, link) == GONE

    # added again (a newer event of any kind): all of it comes back, and they can sign
    back = project_event(
        ProjectStatusChanged, won, project_id, [client.user_id, partner.user_id],
        status="ON_HOLD", previous_status="ACTIVE",
    )  # fmt: skip
    await publish_at(billing, back, project_id, start + timedelta(seconds=2))

    async def regained():
        got = await what_the_client_gets(billing, client, deposit, contract, link)
        return got["payments"] == 2 and got["sign"] == 200 and got

    got = await eventually(regained, timeout=WITHIN)
    assert got == {
        "payments": 2, "payment": 200, "checkout": 200, "documents": 1, "document": 200,
        "download": 200, "sign": 200,
    }  # fmt: skip
