"""Meta lead ads (GET/POST /api/v1/intake/meta) on the real store, with the worker loop
running and a stand-in Graph API served on a loopback port."""

import asyncio
import hashlib
import hmac
import json
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from contacts.bootstrap import service
from contacts.intake.domain import sign
from contacts.intake.graph import GraphClient
from contacts.intake.repository import META_LEADS, MetaLeadRepository
from contacts.intake.service import MetaLeadWorker
from contacts.leads.repository import ContactRepository
from contacts.settings import ContactsSettings
from gala.app import ProcessRole, Runtime, create_app
from gala.identity import IDENTITY_HEADER, Principal, Role
from gala.testing import eventually, http_server, identity_headers, serving, unique_name

PROBLEM = "application/problem+json"
APP_SECRET = "meta-app-secret-for-tests"
VERIFY_TOKEN = "verify-token-for-tests"
PAGE_TOKEN = "page-access-token-for-tests"
MAX_ATTEMPTS = 3


@dataclass
class Graph:
    """The stand-in Graph API's data and what it was asked."""

    leads: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)  # left to fail; -1: always
    calls: Counter = field(default_factory=Counter)
    delay: float = 0.0

    def app(self) -> FastAPI:
        app = FastAPI()
        proof = hmac.new(APP_SECRET.encode(), PAGE_TOKEN.encode(), hashlib.sha256).hexdigest()

        @app.get("/v19.0/{leadgen_id}")
        async def lead(leadgen_id: str, access_token: str = "", appsecret_proof: str = ""):
            self.calls[leadgen_id] += 1
            await asyncio.sleep(self.delay)
            if access_token != PAGE_TOKEN or appsecret_proof != proof:
                return JSONResponse({"error": {"message": "Invalid OAuth access token"}}, 400)
            left = self.failures.get(leadgen_id, 0)
            if left:
                self.failures[leadgen_id] = left - 1 if left > 0 else -1
                return JSONResponse({"error": {"message": "Service temporarily unavailable"}}, 503)
            if leadgen_id not in self.leads:
                return JSONResponse({"error": {"message": "Unsupported get request"}}, 404)
            return self.leads[leadgen_id]

        return app

    def add(self, leadgen_id: str, **answers: str) -> None:
        self.leads[leadgen_id] = {
            "id": leadgen_id,
            "created_time": "2026-03-01T10:00:00+0000",
            "field_data": [{"name": k, "values": [v]} for k, v in answers.items()],
        }


@dataclass
class Meta:
    app: FastAPI
    client: httpx.AsyncClient
    graph: Graph
    settings: ContactsSettings

    @property
    def runtime(self) -> Runtime:
        return self.app.state.runtime

    def headers(self, principal: Principal) -> dict[str, Any]:
        return identity_headers(self.runtime, principal)

    async def new_venue(self) -> Principal:
        venue = unique_name("venue-")
        response = await self.client.post(
            "/internal/v1/users",
            json={
                "venueId": venue,
                "authSubject": unique_name("sub-"),
                "email": f"admin@{venue}.example",
                "role": "ADMIN",
            },
            headers={IDENTITY_HEADER: self.runtime.tokens.issue_for_service("ops")},
        )
        assert response.status_code == 201, response.text
        return Principal(user_id=response.json()["id"], venue_id=venue, role=Role.ADMIN)

    async def map_pages(self, admin: Principal, *pages: str) -> httpx.Response:
        return await self.client.put(
            "/api/v1/contacts/intake-meta-pages",
            json={"pageIds": list(pages)},
            headers=self.headers(admin),
        )

    async def venue_with_page(self) -> tuple[Principal, str]:
        admin = await self.new_venue()
        page = new_id()
        response = await self.map_pages(admin, page)
        assert response.status_code == 200, response.text
        return admin, page

    async def deliver(self, payload: Any, signature: str | None = "sign") -> httpx.Response:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = {"content-type": "application/json"}
        if signature == "sign":
            headers["X-Hub-Signature-256"] = sign(APP_SECRET, body)
        elif signature is not None:
            headers["X-Hub-Signature-256"] = signature
        return await self.client.post("/api/v1/intake/meta", content=body, headers=headers)

    async def record(self, leadgen_id: str) -> dict[str, Any] | None:
        return await self.runtime.store[META_LEADS].find_one({"_id": leadgen_id})

    async def settled(self, leadgen_id: str) -> dict[str, Any]:
        async def probe() -> dict[str, Any] | None:
            record = await self.record(leadgen_id)
            return record if record and record["state"] in ("DONE", "FAILED") else None

        return await eventually(probe, timeout=20)

    async def contacts_of(self, admin: Principal) -> list[dict[str, Any]]:
        response = await self.client.get("/api/v1/contacts?limit=200", headers=self.headers(admin))
        assert response.status_code == 200, response.text
        return response.json()["items"]


def new_id() -> str:
    return str(random.randrange(10**14, 10**15))


def webhook(page: str, *leadgen_ids: str, obj: str = "page") -> dict[str, Any]:
    return {
        "object": obj,
        "entry": [
            {
                "id": page,
                "time": 1_772_000_000,
                "changes": [
                    {
                        "field": "leadgen",
                        "value": {
                            "leadgen_id": leadgen_id,
                            "page_id": page,
                            "form_id": "555000111",
                            "created_time": 1_772_000_000,
                        },
                    }
                    for leadgen_id in leadgen_ids
                ],
            }
        ],
    }


@pytest.fixture(scope="module")
async def meta(infra):
    graph = Graph()
    async with http_server(graph.app()) as graph_url:
        settings = ContactsSettings(
            **{
                **dict(infra),
                "mongo_database": unique_name("gala_contacts_meta_"),
                "meta_verify_token": VERIFY_TOKEN,
                "meta_app_secret": APP_SECRET,
                "meta_page_access_token": PAGE_TOKEN,
                "meta_graph_url": f"{graph_url}/v19.0",
                "meta_lead_poll_interval_seconds": 0.05,
                "meta_lead_backoff_initial_seconds": 0.05,
                "meta_lead_backoff_max_seconds": 0.2,
                "meta_lead_max_attempts": MAX_ATTEMPTS,
            }
        )
        app = create_app(service, ProcessRole.ALL, settings)
        async with serving(app) as client:
            yield Meta(app, client, graph, settings)
        store = Runtime(service, settings, ProcessRole.API).store
        await store.client.drop_database(settings.database_name(service.name))
        await store.close()


def assert_problem(response, status, type_=None):
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    if type_:
        assert response.json()["type"] == f"urn:gala:problem:{type_}"
    return response.json()


# --- the subscription handshake --------------------------------------------------------


async def test_the_handshake_answers_the_challenge_as_plain_text(meta):
    response = await meta.client.get(
        "/api/v1/intake/meta",
        params={"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "1158"


@pytest.mark.parametrize(
    "params",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"},
    ],
)
async def test_a_wrong_handshake_is_403(meta, params):
    response = await meta.client.get("/api/v1/intake/meta", params=params)
    assert_problem(response, 403, "forbidden")


# --- signatures --------------------------------------------------------------------------


async def test_unsigned_and_wrongly_signed_payloads_are_refused_and_change_nothing(meta):
    admin, page = await meta.venue_with_page()
    leadgen_id = new_id()
    meta.graph.add(leadgen_id, email="sneaky@example.com", full_name="Sneaky")
    payload = webhook(page, leadgen_id)
    body = json.dumps(payload).encode()
    for signature in (
        None,
        "",
        "sha256=",
        "sha256=" + "0" * 64,
        sign("another-app-secret", body),
        sign(APP_SECRET, body + b" "),
        sign(APP_SECRET, body).replace("sha256=", "sha1="),
        hmac.new(APP_SECRET.encode(), body, hashlib.sha1).hexdigest(),
    ):
        response = await meta.deliver(body, signature)
        problem = assert_problem(response, 401, "invalid-signature")
        assert problem["status"] == 401
    await asyncio.sleep(0.3)  # the worker would have had time to act
    assert await meta.record(leadgen_id) is None
    assert meta.graph.calls[leadgen_id] == 0
    assert await meta.contacts_of(admin) == []


async def test_a_signed_payload_that_is_not_json_is_422_and_changes_nothing(meta):
    response = await meta.deliver(b"{not json")
    assert_problem(response, 422, "invalid-input")
    broken = await meta.deliver({"object": "page", "entry": [{"changes": [{"field": "leadgen"}]}]})
    assert_problem(broken, 422)


async def test_other_objects_and_fields_are_acknowledged_and_ignored(meta):
    leadgen_id = new_id()
    for payload in (
        {**webhook(new_id(), leadgen_id), "object": "user"},
        {"object": "page", "entry": [{"id": "1", "changes": [{"field": "feed", "value": {}}]}]},
    ):
        response = await meta.deliver(payload)
        assert response.status_code == 200, response.text
    assert await meta.record(leadgen_id) is None


# --- leads -------------------------------------------------------------------------------


async def test_a_signed_lead_becomes_a_contact_through_the_graph_api(meta):
    admin, page = await meta.venue_with_page()
    leadgen_id = new_id()
    meta.graph.add(
        leadgen_id,
        email="Marta@Example.com",
        full_name="Marta Ruiz",
        phone_number="+34 611 22 33 44",
        wedding_date="2026-09-12",
    )
    response = await meta.deliver(webhook(page, leadgen_id))
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "received"}

    record = await meta.settled(leadgen_id)
    assert record["state"] == "DONE", record
    assert (record["venueId"], record["pageId"], record["attempts"]) == (admin.venue_id, page, 1)
    (contact,) = await meta.contacts_of(admin)
    assert record["contactId"] == contact["id"]
    assert (contact["name"], contact["email"], contact["phone"], contact["leadSource"]) == (
        "Marta Ruiz",
        "marta@example.com",
        "+34611223344",
        "FACEBOOK",
    )
    assert contact["customFields"] == {"metaLeadForm": {"wedding_date": "2026-09-12"}}
    assert meta.graph.calls[leadgen_id] == 1


async def test_an_instagram_lead_is_an_instagram_contact(meta):
    admin, account = await meta.venue_with_page()
    leadgen_id = new_id()
    meta.graph.add(leadgen_id, email="ig@example.com", full_name="Insta Gram")
    response = await meta.deliver(webhook(account, leadgen_id, obj="instagram"))
    assert response.status_code == 200, response.text
    assert (await meta.settled(leadgen_id))["state"] == "DONE"
    (contact,) = await meta.contacts_of(admin)
    assert contact["leadSource"] == "INSTAGRAM"


async def test_a_redelivered_webhook_makes_one_record_and_one_contact(meta):
    admin, page = await meta.venue_with_page()
    leadgen_id = new_id()
    meta.graph.add(leadgen_id, email="twice@example.com", full_name="Twice")
    payload = webhook(page, leadgen_id)
    responses = await asyncio.gather(meta.deliver(payload), meta.deliver(payload))
    assert [r.status_code for r in responses] == [200, 200]
    first = await meta.settled(leadgen_id)
    again = await meta.deliver(payload)  # after it was processed, too
    assert again.status_code == 200
    await asyncio.sleep(0.3)
    assert await meta.runtime.store[META_LEADS].count_documents({"_id": leadgen_id}) == 1
    assert await meta.record(leadgen_id) == first
    assert len(await meta.contacts_of(admin)) == 1
    assert meta.graph.calls[leadgen_id] == 1


async def test_a_lead_of_an_unmapped_page_is_kept_as_unroutable_until_the_page_is_mapped(meta):
    page, leadgen_id = new_id(), new_id()
    meta.graph.add(leadgen_id, email="lost@example.com", full_name="Not Lost")
    response = await meta.deliver(webhook(page, leadgen_id))
    assert response.status_code == 200
    await asyncio.sleep(0.3)
    record = await meta.record(leadgen_id)
    assert record is not None
    assert (record["state"], record["venueId"], record["pageId"]) == ("UNROUTABLE", None, page)
    assert meta.graph.calls[leadgen_id] == 0

    admin = await meta.new_venue()
    assert (await meta.map_pages(admin, page)).status_code == 200
    assert (await meta.settled(leadgen_id))["state"] == "DONE"
    assert [c["email"] for c in await meta.contacts_of(admin)] == ["lost@example.com"]


async def test_graph_errors_are_retried_with_backoff(meta):
    admin, page = await meta.venue_with_page()
    leadgen_id = new_id()
    meta.graph.add(leadgen_id, email="retry@example.com", full_name="Re Try")
    meta.graph.failures[leadgen_id] = MAX_ATTEMPTS - 1
    assert (await meta.deliver(webhook(page, leadgen_id))).status_code == 200
    record = await meta.settled(leadgen_id)
    assert (record["state"], record["attempts"]) == ("DONE", MAX_ATTEMPTS)
    assert meta.graph.calls[leadgen_id] == MAX_ATTEMPTS
    assert [c["email"] for c in await meta.contacts_of(admin)] == ["retry@example.com"]


async def test_a_lead_fails_for_good_after_the_last_attempt(meta):
    admin, page = await meta.venue_with_page()
    leadgen_id = new_id()
    meta.graph.failures[leadgen_id] = -1
    assert (await meta.deliver(webhook(page, leadgen_id))).status_code == 200
    record = await meta.settled(leadgen_id)
    assert (record["state"], record["attempts"]) == ("FAILED", MAX_ATTEMPTS)
    assert "503" in record["lastError"]
    await asyncio.sleep(0.3)
    assert meta.graph.calls[leadgen_id] == MAX_ATTEMPTS
    assert await meta.contacts_of(admin) == []


async def test_a_lead_without_an_email_fails_at_once(meta):
    admin, page = await meta.venue_with_page()
    leadgen_id = new_id()
    meta.graph.add(leadgen_id, full_name="No Email")
    assert (await meta.deliver(webhook(page, leadgen_id))).status_code == 200
    record = await meta.settled(leadgen_id)
    assert (record["state"], record["attempts"]) == ("FAILED", 1)
    assert "no email" in record["lastError"]
    assert await meta.contacts_of(admin) == []


async def test_competing_workers_never_process_one_lead_twice(meta):
    admin, page = await meta.venue_with_page()
    leadgen_ids = [new_id() for _ in range(20)]
    for n, leadgen_id in enumerate(leadgen_ids):
        meta.graph.add(leadgen_id, email=f"w{n}@example.com", full_name=f"Worker {n}")
    meta.graph.delay = 0.02
    try:
        store, outbox = meta.runtime.store, meta.runtime.outbox
        async with GraphClient(
            meta.settings.meta_graph_url, PAGE_TOKEN, app_secret=APP_SECRET
        ) as graph:
            workers = [
                MetaLeadWorker(
                    MetaLeadRepository(store),
                    ContactRepository(store, outbox),
                    graph,
                    meta.settings,
                )
                for _ in range(3)
            ]
            assert (await meta.deliver(webhook(page, *leadgen_ids))).status_code == 200

            async def drain(worker: MetaLeadWorker) -> None:
                while await worker.run_once():
                    pass

            # three more replicas' workers, besides the app's own loop
            await asyncio.gather(*(drain(worker) for worker in workers))
        records = [await meta.settled(leadgen_id) for leadgen_id in leadgen_ids]
    finally:
        meta.graph.delay = 0.0
    assert {record["state"] for record in records} == {"DONE"}
    assert all(meta.graph.calls[leadgen_id] == 1 for leadgen_id in leadgen_ids)
    assert len(await meta.contacts_of(admin)) == len(leadgen_ids)


# --- page mapping ------------------------------------------------------------------------


async def test_an_admin_maps_pages_and_a_page_belongs_to_one_venue(meta):
    admin = await meta.new_venue()
    first, second, third = new_id(), new_id(), new_id()
    mapped = await meta.map_pages(admin, second, first, f" {first} ")
    assert mapped.status_code == 200, mapped.text
    assert mapped.json() == {"pageIds": sorted([first, second])}

    other = await meta.new_venue()
    taken = await meta.map_pages(other, third, first)
    problem = assert_problem(taken, 409, "conflict")
    assert problem["pageIds"] == [first]
    listed = await meta.client.get(
        "/api/v1/contacts/intake-meta-pages", headers=meta.headers(other)
    )
    assert listed.json() == {"pageIds": []}  # nothing changed, not even the free page

    replaced = await meta.map_pages(admin, third)
    assert replaced.json() == {"pageIds": [third]}
    now_free = await meta.map_pages(other, first)
    assert now_free.json() == {"pageIds": [first]}
    cleared = await meta.map_pages(admin)
    assert cleared.json() == {"pageIds": []}


@pytest.mark.parametrize("pages", [["not-a-page"], ["12/34"], [""], [str(n) for n in range(51)]])
async def test_invalid_page_ids_are_422(meta, pages):
    admin = await meta.new_venue()
    assert_problem(await meta.map_pages(admin, *pages), 422, "invalid-input")


async def test_a_lead_reaches_only_the_venue_that_mapped_its_page(meta):
    admin, page = await meta.venue_with_page()
    bystander = await meta.new_venue()
    leadgen_id = new_id()
    meta.graph.add(leadgen_id, email=f"{uuid.uuid4().hex[:6]}@example.com", full_name="Only")
    assert (await meta.deliver(webhook(page, leadgen_id))).status_code == 200
    assert (await meta.settled(leadgen_id))["venueId"] == admin.venue_id
    assert len(await meta.contacts_of(admin)) == 1
    assert await meta.contacts_of(bystander) == []
