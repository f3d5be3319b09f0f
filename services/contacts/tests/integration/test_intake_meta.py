"""Meta lead ads (GET/POST /api/v1/intake/meta) on the real store, with the worker loop
running and a stand-in Graph API served on a loopback port."""

import asyncio
import hashlib
import hmac
import json
import logging
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from contacts.bootstrap import service
from contacts.intake.domain import sign
from contacts.intake.graph import GraphClient, GraphError
from contacts.intake.repository import META_LEADS, PAGES, IntakeRepository, MetaLeadRepository
from contacts.intake.service import MetaLeadWorker
from contacts.leads.repository import ContactRepository
from contacts.settings import ContactsSettings
from gala.app import ProcessRole, Runtime, create_app
from gala.identity import IDENTITY_HEADER, Principal, Role
from gala.testing import (
    eventually,
    free_port,
    http_server,
    identity_headers,
    serving,
    unique_name,
)

PROBLEM = "application/problem+json"
APP_SECRET = "meta-app-secret-for-tests"
VERIFY_TOKEN = "verify-token-for-tests"
MAX_ATTEMPTS = 3


def proof_of(token: str) -> str:
    return hmac.new(APP_SECRET.encode(), token.encode(), hashlib.sha256).hexdigest()


INVALID_TOKEN = {
    "error": {"message": "Invalid OAuth access token", "type": "OAuthException", "code": 190}
}


@dataclass
class Graph:
    """The stand-in Graph API's data and what it was asked.

    Like Meta's: a token belongs to one object (a page, or a person); ``/me`` names it;
    a lead is read only with a token of its page.
    """

    leads: dict[str, dict[str, Any]] = field(default_factory=dict)
    lead_pages: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  # token -> the object it belongs to
    failures: dict[str, int] = field(default_factory=dict)  # left to fail; -1: always
    calls: Counter = field(default_factory=Counter)
    read_with: dict[str, str] = field(default_factory=dict)  # leadgen id -> token that read it
    token_checks: Counter = field(default_factory=Counter)
    delay: float = 0.0
    down: bool = False

    def token_for(self, owner: str) -> str:
        """A new token of ``owner`` (a page, or a person's id)."""
        token = f"EAAG{uuid.uuid4().hex}{uuid.uuid4().hex}"
        self.tokens[token] = owner
        return token

    def revoke(self, token: str) -> None:
        self.tokens.pop(token, None)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/v19.0/me")
        async def me(fields: str = "", access_token: str = "", appsecret_proof: str = ""):
            self.token_checks[access_token] += 1
            if self.down:
                return JSONResponse(
                    {"error": {"message": "Service unavailable", "code": 2, "is_transient": True}},
                    503,
                )
            if appsecret_proof != proof_of(access_token) or access_token not in self.tokens:
                return JSONResponse(INVALID_TOKEN, 400)
            return {"id": self.tokens[access_token], "name": "Some page"}

        @app.get("/v19.0/{leadgen_id}")
        async def lead(leadgen_id: str, access_token: str = "", appsecret_proof: str = ""):
            self.calls[leadgen_id] += 1
            await asyncio.sleep(self.delay)
            left = self.failures.get(leadgen_id, 0)
            if left:
                self.failures[leadgen_id] = left - 1 if left > 0 else -1
                return JSONResponse({"error": {"message": "Service temporarily unavailable"}}, 503)
            if appsecret_proof != proof_of(access_token) or access_token not in self.tokens:
                return JSONResponse(INVALID_TOKEN, 400)
            if leadgen_id not in self.leads:
                return JSONResponse({"error": {"message": "Unsupported get request"}}, 404)
            if self.tokens[access_token] != self.lead_pages[leadgen_id]:
                return JSONResponse({"error": {"message": "Permissions error", "code": 200}}, 403)
            self.read_with[leadgen_id] = access_token
            return self.leads[leadgen_id]

        return app

    def add(self, leadgen_id: str, page: str, **answers: str) -> None:
        self.lead_pages[leadgen_id] = page
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

    async def map_pages(
        self, admin: Principal, *pages: str | tuple[str, str | None]
    ) -> httpx.Response:
        """Map pages, each with a new token of its own unless given (page, token|None)."""
        items = []
        for page in pages:
            page_id, token = page if isinstance(page, tuple) else (page, self.graph.token_for(page))
            items.append({"pageId": page_id, **({"accessToken": token} if token else {})})
        return await self.client.put(
            "/api/v1/contacts/intake-meta-pages",
            json={"pages": items},
            headers=self.headers(admin),
        )

    async def pages_of(self, admin: Principal) -> list[str]:
        response = await self.client.get(
            "/api/v1/contacts/intake-meta-pages", headers=self.headers(admin)
        )
        assert response.status_code == 200, response.text
        return response.json()["pageIds"]

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
    meta.graph.add(leadgen_id, page, email="sneaky@example.com", full_name="Sneaky")
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
        page,
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
    meta.graph.add(leadgen_id, account, email="ig@example.com", full_name="Insta Gram")
    response = await meta.deliver(webhook(account, leadgen_id, obj="instagram"))
    assert response.status_code == 200, response.text
    assert (await meta.settled(leadgen_id))["state"] == "DONE"
    (contact,) = await meta.contacts_of(admin)
    assert contact["leadSource"] == "INSTAGRAM"


async def test_a_redelivered_webhook_makes_one_record_and_one_contact(meta):
    admin, page = await meta.venue_with_page()
    leadgen_id = new_id()
    meta.graph.add(leadgen_id, page, email="twice@example.com", full_name="Twice")
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
    meta.graph.add(leadgen_id, page, email="lost@example.com", full_name="Not Lost")
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
    meta.graph.add(leadgen_id, page, email="retry@example.com", full_name="Re Try")
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
    meta.graph.add(leadgen_id, page, full_name="No Email")
    assert (await meta.deliver(webhook(page, leadgen_id))).status_code == 200
    record = await meta.settled(leadgen_id)
    assert (record["state"], record["attempts"]) == ("FAILED", 1)
    assert "no email" in record["lastError"]
    assert await meta.contacts_of(admin) == []


async def test_competing_workers_never_process_one_lead_twice(meta):
    admin, page = await meta.venue_with_page()
    leadgen_ids = [new_id() for _ in range(20)]
    for n, leadgen_id in enumerate(leadgen_ids):
        meta.graph.add(leadgen_id, page, email=f"w{n}@example.com", full_name=f"Worker {n}")
    meta.graph.delay = 0.02
    try:
        store, outbox = meta.runtime.store, meta.runtime.outbox
        async with GraphClient(meta.settings.meta_graph_url, app_secret=APP_SECRET) as graph:
            workers = [
                MetaLeadWorker(
                    IntakeRepository(store),
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
    first_token = meta.graph.token_for(first)
    mapped = await meta.map_pages(admin, second, (first, first_token), (f" {first} ", first_token))
    assert mapped.status_code == 200, mapped.text
    assert mapped.json() == {"pageIds": sorted([first, second])}

    other = await meta.new_venue()
    taken = await meta.map_pages(other, third, first)  # its tokens are good, but so is ours
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
    meta.graph.add(leadgen_id, page, email=f"{uuid.uuid4().hex[:6]}@example.com", full_name="Only")
    assert (await meta.deliver(webhook(page, leadgen_id))).status_code == 200
    assert (await meta.settled(leadgen_id))["venueId"] == admin.venue_id
    assert len(await meta.contacts_of(admin)) == 1
    assert await meta.contacts_of(bystander) == []


# --- proof of control: page access tokens -------------------------------------------------


async def test_a_page_is_mapped_only_with_a_token_the_graph_api_answers_as_that_pages(meta):
    admin = await meta.new_venue()
    page, elsewhere = new_id(), new_id()
    person = meta.graph.token_for("10000123456789")  # a person's token: /me is the person
    for attempt in (
        (page, None),  # no proof at all
        (page, "EAAG-made-up-token"),  # refused by the Graph API
        (page, meta.graph.token_for(elsewhere)),  # another page's
        (page, person),
        (page, "two words"),  # not a token
    ):
        response = await meta.map_pages(admin, attempt)
        problem = assert_problem(response, 422, "invalid-input")
        assert problem["pageIds"] == [page], problem
        assert await meta.pages_of(admin) == []
    revoked = meta.graph.token_for(page)
    meta.graph.revoke(revoked)
    assert_problem(await meta.map_pages(admin, (page, revoked)), 422, "invalid-input")
    # one bad token among good ones: nothing is mapped
    mixed = await meta.map_pages(admin, elsewhere, (page, person))
    assert assert_problem(mixed, 422)["pageIds"] == [page]
    assert await meta.pages_of(admin) == []

    good = await meta.map_pages(admin, (page, meta.graph.token_for(page)))
    assert good.status_code == 200, good.text
    assert good.json() == {"pageIds": [page]}


async def test_the_graph_api_out_of_reach_is_503_and_changes_nothing(meta):
    admin, page = await meta.venue_with_page()
    other = new_id()
    meta.graph.down = True
    try:
        response = await meta.map_pages(admin, page, other)
        assert_problem(response, 503, "unavailable")
    finally:
        meta.graph.down = False
    assert await meta.pages_of(admin) == [page]
    # a Graph API no one answers for: the client says so (the service answers 503)
    async with GraphClient(f"http://127.0.0.1:{free_port()}/v19.0", app_secret=APP_SECRET) as graph:
        with pytest.raises(GraphError):
            await graph.token_owner(meta.graph.token_for(page))


async def test_each_venues_leads_are_read_with_its_own_page_token(meta):
    first, second = await meta.new_venue(), await meta.new_venue()
    page_a, page_b = new_id(), new_id()
    token_a, token_b = meta.graph.token_for(page_a), meta.graph.token_for(page_b)
    assert (await meta.map_pages(first, (page_a, token_a))).status_code == 200
    assert (await meta.map_pages(second, (page_b, token_b))).status_code == 200
    lead_a, lead_b = new_id(), new_id()
    meta.graph.add(lead_a, page_a, email="a@example.com", full_name="Of A")
    meta.graph.add(lead_b, page_b, email="b@example.com", full_name="Of B")
    assert (await meta.deliver(webhook(page_a, lead_a))).status_code == 200
    assert (await meta.deliver(webhook(page_b, lead_b))).status_code == 200
    assert (await meta.settled(lead_a))["state"] == "DONE"
    assert (await meta.settled(lead_b))["state"] == "DONE"
    assert (meta.graph.read_with[lead_a], meta.graph.read_with[lead_b]) == (token_a, token_b)
    assert [c["email"] for c in await meta.contacts_of(first)] == ["a@example.com"]
    assert [c["email"] for c in await meta.contacts_of(second)] == ["b@example.com"]


async def test_mapping_again_keeps_the_tokens_held_and_takes_new_ones(meta):
    admin = await meta.new_venue()
    kept, added = new_id(), new_id()
    kept_token = meta.graph.token_for(kept)
    assert (await meta.map_pages(admin, (kept, kept_token))).status_code == 200
    checks = meta.graph.token_checks[kept_token]
    again = await meta.map_pages(admin, (kept, None), added)  # no need to give it again
    assert again.status_code == 200, again.text
    assert again.json() == {"pageIds": sorted([kept, added])}
    assert meta.graph.token_checks[kept_token] == checks  # nothing to check
    leadgen_id = new_id()
    meta.graph.add(leadgen_id, kept, email="kept@example.com", full_name="Kept")
    assert (await meta.deliver(webhook(kept, leadgen_id))).status_code == 200
    assert (await meta.settled(leadgen_id))["state"] == "DONE"
    assert meta.graph.read_with[leadgen_id] == kept_token
    # a new token replaces the one held
    fresh = meta.graph.token_for(kept)
    assert (await meta.map_pages(admin, (kept, fresh), (added, None))).status_code == 200
    second = new_id()
    meta.graph.add(second, kept, email="kept2@example.com", full_name="Kept Two")
    assert (await meta.deliver(webhook(kept, second))).status_code == 200
    assert (await meta.settled(second))["state"] == "DONE"
    assert meta.graph.read_with[second] == fresh
    # a page removed is not the venue's any more, nor is its token
    assert (await meta.map_pages(admin, (added, None))).json() == {"pageIds": [added]}
    assert await meta.runtime.store[PAGES].find_one({"_id": kept}) is None


async def test_a_page_is_taken_over_only_when_the_holders_token_is_dead(meta):
    holder, newcomer = await meta.new_venue(), await meta.new_venue()
    page = new_id()
    holder_token = meta.graph.token_for(page)
    assert (await meta.map_pages(holder, (page, holder_token))).status_code == 200
    # the holder's token still works: taken, whatever the newcomer proves
    taken = await meta.map_pages(newcomer, page)
    assert assert_problem(taken, 409, "conflict")["pageIds"] == [page]
    # the Graph API cannot say whether the holder's token works: 503, nothing changes
    newcomer_token = meta.graph.token_for(page)
    meta.graph.revoke(holder_token)
    meta.graph.down = True
    try:
        assert_problem(await meta.map_pages(newcomer, (page, newcomer_token)), 503, "unavailable")
    finally:
        meta.graph.down = False
    assert await meta.pages_of(holder) == [page]
    # a pending lead of the page, not yet read (the holder's token no longer reads it)
    waiting = new_id()
    meta.graph.add(waiting, page, email="waiting@example.com", full_name="Waiting")
    meta.graph.failures[waiting] = -1
    assert (await meta.deliver(webhook(page, waiting))).status_code == 200
    record = await meta.record(waiting)
    assert record is not None and record["venueId"] == holder.venue_id
    # the holder's token is dead and the newcomer proves control: the page is its now
    took = await meta.map_pages(newcomer, (page, newcomer_token))
    assert took.status_code == 200, took.text
    assert took.json() == {"pageIds": [page]}
    assert await meta.pages_of(holder) == []
    meta.graph.failures.pop(waiting)
    record = await meta.record(waiting)
    assert record is not None and record["venueId"] == newcomer.venue_id
    leadgen_id = new_id()
    meta.graph.add(leadgen_id, page, email="new-owner@example.com", full_name="New Owner")
    assert (await meta.deliver(webhook(page, leadgen_id))).status_code == 200
    assert (await meta.settled(leadgen_id))["venueId"] == newcomer.venue_id
    assert meta.graph.read_with[leadgen_id] == newcomer_token
    # and the former holder cannot take it back while the newcomer's token works
    back = await meta.map_pages(holder, page)
    assert_problem(back, 409, "conflict")


async def test_a_mapping_without_a_token_reads_no_leads_and_yields_to_a_proven_one(meta):
    legacy, prover = await meta.new_venue(), await meta.new_venue()
    page = new_id()
    # a mapping made before tokens were required
    await meta.runtime.store[PAGES].insert_one(
        {"_id": page, "venueId": legacy.venue_id, "mappedAt": datetime.now(UTC)}
    )
    leadgen_id = new_id()
    meta.graph.add(leadgen_id, page, email="parked@example.com", full_name="Parked")
    assert (await meta.deliver(webhook(page, leadgen_id))).status_code == 200

    async def parked() -> dict[str, Any] | None:
        record = await meta.record(leadgen_id)
        return record if record and record["state"] == "UNROUTABLE" else None

    record = await eventually(parked, timeout=20)
    assert record["venueId"] is None and "access token" in record["lastError"]
    assert meta.graph.calls[leadgen_id] == 0
    # the venue cannot keep it without a token, and another one proving control takes it
    assert_problem(await meta.map_pages(legacy, (page, None)), 422, "invalid-input")
    took = await meta.map_pages(prover, page)
    assert took.status_code == 200, took.text
    assert await meta.pages_of(legacy) == []
    assert (await meta.settled(leadgen_id))["state"] == "DONE"
    assert [c["email"] for c in await meta.contacts_of(prover)] == ["parked@example.com"]


async def test_page_tokens_are_never_answered_nor_logged(meta, caplog):
    caplog.set_level(logging.DEBUG)
    admin = await meta.new_venue()
    page = new_id()
    token = meta.graph.token_for(page)
    answers = [await meta.map_pages(admin, (page, token))]
    answers.append(
        await meta.client.get("/api/v1/contacts/intake-meta-pages", headers=meta.headers(admin))
    )
    answers.append(await meta.map_pages(admin, (page, "EAAG-refused")))  # a 422 problem
    answers.append(await meta.map_pages(admin, (page, "x" * 3000)))  # a 422 problem
    leadgen_id = new_id()
    meta.graph.add(leadgen_id, page, email="quiet@example.com", full_name="Quiet")
    assert (await meta.deliver(webhook(page, leadgen_id))).status_code == 200
    assert (await meta.settled(leadgen_id))["state"] == "DONE"
    assert meta.graph.read_with[leadgen_id] == token
    assert [a.status_code for a in answers] == [200, 200, 422, 422]
    for answer in answers:
        assert token not in answer.text and "EAAG-refused" not in answer.text
    openapi = (await meta.client.get("/openapi.json")).json()
    body = openapi["components"]["schemas"]["MetaPageIn"]["properties"]["accessToken"]
    assert "writeOnly" in json.dumps(body)
    logged = [record for record in caplog.records if record.name.startswith(("contacts", "httpx"))]
    assert any("/me" in record.getMessage() for record in logged)  # httpx logged the calls
    for record in logged:
        assert token not in record.getMessage()
        assert token not in json.dumps(record.__dict__, default=str)
