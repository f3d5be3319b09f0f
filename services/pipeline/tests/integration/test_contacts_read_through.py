"""A contact the pipeline's copy lacks (after a bulk import the events lag): the pipeline
asks the contacts service once (a real one, over HTTP, with the service token: the
``contacts_url`` fixture) and keeps the answer; unknown there too: 422; the contacts
service down: 503, retry."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from gala.app import ProcessRole
from gala.identity import IDENTITY_HEADER, InternalTokens, Principal, Role
from gala.settings import Settings
from gala.testing import (
    ServiceUnderTest,
    free_port,
    own_database,
    running_service,
    unique_name,
)
from pipeline.bootstrap import service
from pipeline.contacts.repository import ContactCopyRepository
from pipeline.settings import PipelineSettings

pytestmark = pytest.mark.asyncio(loop_scope="session")

OPPS = "/api/v1/opportunities"


class Pipeline(ServiceUnderTest):
    async def known_contact(self, venue: str) -> str:
        """A contact the copy knows (as if its created event had been consumed)."""
        contact_id = str(uuid.uuid4())
        await ContactCopyRepository(self.runtime.store).upsert(
            venue, contact_id, "Known Person", datetime.now(UTC)
        )
        return contact_id


async def pipeline_asking(infra: Settings, url: str) -> AsyncIterator[Pipeline]:
    """The pipeline (API role) asking the contacts service at ``url``."""
    async with own_database(service, infra) as isolated:
        settings = PipelineSettings(
            **{
                **dict(isolated),
                "pipeline_contacts_url": url,
                "pipeline_contacts_timeout_seconds": 5,
            }
        )
        async with running_service(service, settings, ProcessRole.API, Pipeline) as pipeline:
            yield pipeline


@pytest.fixture(scope="module")
async def asking(infra: Settings, contacts_url: str) -> AsyncIterator[Pipeline]:
    async for pipeline in pipeline_asking(infra, contacts_url):
        yield pipeline


@pytest.fixture(scope="module")
async def owner_down(infra: Settings) -> AsyncIterator[Pipeline]:
    """A pipeline whose contacts service does not answer (nothing listens there)."""
    async for pipeline in pipeline_asking(infra, f"http://127.0.0.1:{free_port()}"):
        yield pipeline


async def contact_in_contacts(url: str, tokens: InternalTokens, venue: str, name: str) -> str:
    """A contact made through the contacts service's own API (its events are not
    consumed by these pipelines: their copies lack it, as right after an import)."""
    admin = Principal(user_id=unique_name("user-"), venue_id=venue, role=Role.ADMIN)
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.post(
            "/api/v1/contacts",
            json={"name": name, "email": f"{uuid.uuid4().hex[:8]}@wed.example"},
            headers={IDENTITY_HEADER: tokens.issue(admin)},
        )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_a_contact_the_copy_lacks_is_asked_of_the_contacts_service(asking, contacts_url):
    venue, admin = asking.new_venue()
    contact = await contact_in_contacts(contacts_url, asking.runtime.tokens, venue, "Ada Byron")
    copies = ContactCopyRepository(asking.runtime.store)
    assert await copies.get(venue, contact) is None
    created = await asking.call("POST", OPPS, admin, {"name": "Gala", "contactId": contact})
    assert created.status_code == 201, created.text
    assert created.json()["contactName"] == "Ada Byron"
    copy = await copies.get(venue, contact)
    assert copy is not None and copy.name == "Ada Byron" and not copy.erased
    # kept as of the contact's last change: a later event wins, an older one does not
    assert not await copies.upsert(venue, contact, "Older Name", copy.as_of - timedelta(hours=1))
    assert await copies.upsert(venue, contact, "Ada Lovelace", datetime.now(UTC))
    # another venue cannot use it: the contacts service has no such contact there
    _, stranger = asking.new_venue()
    refused = await asking.call("POST", OPPS, stranger, {"name": "X", "contactId": contact})
    assert refused.status_code == 422, refused.text


async def test_a_contact_unknown_everywhere_is_422(asking):
    _, admin = asking.new_venue()
    unknown = str(uuid.uuid4())
    response = await asking.call("POST", OPPS, admin, {"name": "Gala", "contactId": unknown})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["contactId"] == unknown


async def test_an_erased_contact_learned_from_the_owner_is_422_and_stays_erased(
    asking, contacts_url
):
    venue, admin = asking.new_venue()
    tokens = asking.runtime.tokens
    contact = await contact_in_contacts(contacts_url, tokens, venue, "Gone Person")
    eraser = Principal(user_id=unique_name("user-"), venue_id=venue, role=Role.ADMIN)
    async with httpx.AsyncClient(base_url=contacts_url) as client:
        erased = await client.delete(
            f"/api/v1/contacts/{contact}", headers={IDENTITY_HEADER: tokens.issue(eraser)}
        )
    assert erased.status_code == 204, erased.text
    response = await asking.call("POST", OPPS, admin, {"name": "Gala", "contactId": contact})
    assert response.status_code == 422, response.text
    copy = await ContactCopyRepository(asking.runtime.store).get(venue, contact)
    assert copy is not None and copy.erased and copy.name is None


async def test_the_contacts_service_down_answers_503_retry_and_the_copy_still_works(
    owner_down,
):
    venue, admin = owner_down.new_venue()
    unknown = str(uuid.uuid4())
    response = await owner_down.call("POST", OPPS, admin, {"name": "Gala", "contactId": unknown})
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["retry-after"] == "2"
    assert "retry" in response.json()["detail"]
    known = await owner_down.known_contact(venue)
    from_copy = await owner_down.call("POST", OPPS, admin, {"name": "Gala", "contactId": known})
    assert from_copy.status_code == 201, from_copy.text


async def test_only_gala_services_may_ask_the_contacts_service(asking, contacts_url):
    venue, _ = asking.new_venue()
    tokens = asking.runtime.tokens
    contact = await contact_in_contacts(contacts_url, tokens, venue, "Ada Byron")
    user = Principal(user_id=unique_name("user-"), venue_id=venue, role=Role.ADMIN)
    path = f"/internal/v1/contacts/{contact}"
    async with httpx.AsyncClient(base_url=contacts_url) as client:
        as_user = await client.get(
            path, params={"venueId": venue}, headers={IDENTITY_HEADER: tokens.issue(user)}
        )
        anonymous = await client.get(path, params={"venueId": venue})
        as_service = await client.get(
            path,
            params={"venueId": venue},
            headers={IDENTITY_HEADER: tokens.issue_for_service("pipeline")},
        )
    assert (as_user.status_code, anonymous.status_code) == (401, 401)
    assert as_service.status_code == 200
    assert as_service.json() == {
        **as_service.json(),
        "id": contact,
        "venueId": venue,
        "name": "Ada Byron",
        "erased": False,
    }
