"""Who may see and change what: every route of the merged OpenAPI x every role x
own venue / another project / another venue, with the answer each must get (issue 13).

The routes come from the gateway's merged OpenAPI document, so a route without a rule
below fails the test, and so does a rule for a route that no longer exists. A venue has
one user of each role: STAFF assigned to a task of project P1 (not of P2), the CLIENT a
client of P1 (not of P2); another venue has the same kinds of records. Each cell sends one
request through the gateway and checks the status; a list also must not show another
venue's records, nor (to STAFF and CLIENT) another project's. Requests that change or
use up a record (erasure, win, signature, payment...) get a fresh record per cell.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI, Response

from gala.settings import Settings
from gala.testing import eventually, http_server, unique_name
from tests.e2e.system import System, whole_system

pytestmark = pytest.mark.integration

ADMIN, SALES, PM, STAFF, CLIENT, PARTNER, NOBODY = (
    "ADMIN", "SALES", "PROJECT_MANAGER", "STAFF", "CLIENT", "PARTNER", "anonymous",
)  # fmt: skip
PEOPLE = (ADMIN, SALES, PM, STAFF, CLIENT)
ROLES = (*PEOPLE, PARTNER)
"""PARTNER: a partner app's API key of the venue (``Bearer gala_pk_...``)."""
EVERYONE = frozenset(PEOPLE)
PARTNER_ROUTES = ("/api/v1/partners/", "/api/v1/events")
STAFF_ROLES = frozenset({ADMIN, SALES, PM, STAFF})
CONTACT_ROLES = frozenset({ADMIN, SALES})
PIPELINE_READERS = frozenset({ADMIN, SALES, PM})
MANAGERS = frozenset({ADMIN, PM})
WHOLE_VENUE_PROJECTS = frozenset({ADMIN, PM, SALES})
CHAT_TEAM = frozenset({ADMIN, PM})
BILLING_READERS = frozenset({ADMIN, SALES, PM})
BILLING_WRITERS = frozenset({ADMIN, SALES})
ONLY_ADMIN = frozenset({ADMIN})
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"

OWN, OTHER_PROJECT, OTHER_VENUE = "own", "other project", "other venue"
EVENT_TYPE = "GALA DINNER"
"""The event type whose template the template routes work on (a venue's own)."""


# --- the world the matrix runs in -------------------------------------------------------


@dataclass
class Records:
    """One venue's records, by kind: what a path parameter names."""

    contact: str = ""
    opportunity: str = ""
    room: str = ""
    user: str = ""
    project: str = ""
    task: str = ""
    payment: str = ""
    document: str = ""
    client_link: str = ""
    app: str = ""
    endpoint: str = ""
    delivery: str = ""
    import_job: str = ""


@dataclass
class World:
    system: System
    http: httpx.AsyncClient
    venue: str
    tokens: dict[str, str]
    user_ids: dict[str, str]
    own: Records
    other_project: Records
    other_venue: Records
    other_admin: str
    """A session token of the other venue's ADMIN."""
    receiver: str = ""
    """A partner's webhook receiver (on this machine: it answers 204 to everything)."""
    made: list[str] = field(default_factory=list)

    async def call(
        self, role: str, method: str, path: str, *, expect: int | tuple[int, ...], **kw: Any
    ) -> httpx.Response:
        """A request as ``role`` (of this venue) that must answer ``expect``."""
        return await call(self.http, self.tokens.get(role), method, path, expect=expect, **kw)

    def records(self, scope: str) -> Records:
        return {OWN: self.own, OTHER_PROJECT: self.other_project, OTHER_VENUE: self.other_venue}[
            scope
        ]

    def foreign_ids(self, role: str) -> list[str]:
        """Ids a list answered to ``role`` must never hold."""
        ids = [v for v in vars(self.other_venue).values() if v]
        if role in (STAFF, CLIENT):
            other = self.other_project
            ids += [other.project, other.task, other.payment, other.document]
        return ids


async def call(
    http: httpx.AsyncClient,
    token: str | None,
    method: str,
    path: str,
    *,
    expect: int | tuple[int, ...],
    **kw: Any,
) -> httpx.Response:
    headers = dict(kw.pop("headers", {}))
    if token:
        headers["Authorization"] = f"Bearer {token}"
    response = await http.request(method, path, headers=headers, **kw)
    expected = (expect,) if isinstance(expect, int) else expect
    assert response.status_code in expected, (
        f"{method} {path}: {response.status_code} {response.text[:300]}"
    )
    return response


async def until(probe: Callable[[], Awaitable[Any]], timeout: float = 60.0) -> Any:
    """``probe()``'s first truthy answer (the system is eventually consistent)."""
    found: list[Any] = []

    async def check() -> bool:
        value = await probe()
        if value:
            found.append(value)
        return bool(value)

    await eventually(check, timeout=timeout, interval=0.2)
    return found[0]


async def venue_records(
    w: World, token: str, staff_id: str | None, client_id: str | None, user_id: str
) -> tuple[Records, Records]:
    """A venue's records (and those of a second project of it), made as its ADMIN would."""

    async def as_admin(method: str, path: str, expect: int | tuple[int, ...], **kw: Any) -> Any:
        response = await call(w.http, token, method, path, expect=expect, **kw)
        return response.json() if response.content else None

    first, second = Records(user=user_id), Records(user=user_id)
    event = (datetime.now(UTC) + timedelta(days=200)).date().isoformat() + "T18:00:00Z"
    for records, name in ((first, "First"), (second, "Second")):
        contact = await as_admin(
            "POST", "/api/v1/contacts", 201,
            json={"name": f"{name} Client", "email": f"{unique_name('c-')}@example.com"},
        )  # fmt: skip
        records.contact = contact["id"]
        wedding = {"name": f"{name} wedding", "contactId": contact["id"], "value": "1000.00",
                   "eventType": "wedding", "eventDate": event}  # fmt: skip
        # the pipeline knows the contact once it has read its event
        opportunity = await until(
            lambda body=wedding: _created(  # type: ignore[misc]
                call(w.http, token, "POST", "/api/v1/opportunities", expect=(201, 422), json=body)
            )
        )
        records.opportunity = opportunity["id"]
        await as_admin("POST", f"/api/v1/opportunities/{opportunity['id']}/win", 200)

    async def project_of(opportunity: str) -> dict[str, Any] | None:
        page = await as_admin("GET", f"/api/v1/projects?opportunityId={opportunity}", 200)
        return page["items"][0] if page["items"] else None

    async def payments_of(opportunity: str) -> list[dict[str, Any]]:
        page = await as_admin("GET", f"/api/v1/payments?opportunityId={opportunity}", 200)
        return list(page["items"])

    for records in (first, second):
        project = await until(lambda r=records: project_of(r.opportunity))
        records.project = project["id"]
        records.client_link = project["clientLink"].rsplit("/", 1)[-1]
        payments = await until(lambda r=records: payments_of(r.opportunity))
        records.payment = payments[0]["id"]
        # billing knows the project once it has read the project's event
        upload = f"/api/v1/documents?name=contract.pdf&projectId={records.project}"
        document = await until(
            lambda path=upload: _created(  # type: ignore[misc]
                call(w.http, token, "POST", path, expect=(201, 422), content=PDF,
                     headers={"Content-Type": "application/pdf"})
            )
        )  # fmt: skip
        records.document = document["id"]
    room = await as_admin("POST", "/api/v1/rooms", 201, json={"name": "Hall", "capacity": 100})
    first.room = second.room = room["id"]
    # the first project's task is the STAFF user's, and its client the CLIENT user
    assignee = {"assigneeId": staff_id} if staff_id else {}
    first.task = (
        await until(
            lambda: _created(
                call(
                    w.http,
                    token,
                    "POST",
                    f"/api/v1/projects/{first.project}/tasks",
                    expect=(201, 422),
                    json={"title": "Set the tables", **assignee},
                )
            )
        )
    )["id"]
    second.task = (
        await as_admin(
            "POST", f"/api/v1/projects/{second.project}/tasks", 201, json={"title": "Flowers"}
        )
    )["id"]
    if client_id:
        await until(
            lambda: _ok(
                call(
                    w.http,
                    token,
                    "PATCH",
                    f"/api/v1/projects/{first.project}",
                    expect=(200, 422),
                    json={"clientIds": [client_id]},
                )
            )
        )
    return first, second


async def _created(request: Awaitable[httpx.Response]) -> dict[str, Any] | None:
    response = await request
    return response.json() if response.status_code == 201 else None


async def _listed(request: Awaitable[httpx.Response]) -> list[dict[str, Any]]:
    return list((await request).json()["items"])


async def _ok(request: Awaitable[httpx.Response]) -> bool:
    return (await request).status_code == 200


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world(infra: Settings, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    logs = tmp_path_factory.mktemp("access-matrix")
    limits = {"GALA_RATE_LIMIT_PER_MINUTE": "1000000", "GALA_RATE_LIMIT_BURST": "100000",
              "GALA_INTAKE_RATE_LIMIT_PER_MINUTE": "1000000",
              # the partner's receiver runs on this machine
              "GALA_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true"}  # fmt: skip
    receiving = FastAPI()

    @receiving.post("/hooks")
    async def received() -> Response:
        return Response(status_code=204)

    async with (
        http_server(receiving) as receiver,
        whole_system(infra, logs, extra_env=limits) as system,
        httpx.AsyncClient(base_url=system.gateway, timeout=30) as http,
    ):
        venue, elsewhere = unique_name("venue-a-"), unique_name("venue-b-")
        users = {role: await system.add_user(venue, role) for role in PEOPLE}
        target_id, _, _ = await system.add_user(venue, STAFF, name="Someone Else")
        other_admin_id, _, other_admin = await system.add_user(elsewhere, ADMIN)
        w = World(
            system, http, venue,
            tokens={role: token for role, (_, _, token) in users.items()},
            user_ids={role: user_id for role, (user_id, _, _) in users.items()},
            own=Records(), other_project=Records(), other_venue=Records(),
            other_admin=other_admin, receiver=f"{receiver}/hooks",
        )  # fmt: skip
        w.own, w.other_project = await venue_records(
            w, w.tokens[ADMIN], w.user_ids[STAFF], w.user_ids[CLIENT], target_id
        )
        w.other_venue, _ = await venue_records(w, other_admin, None, None, other_admin_id)
        # the venues' partner apps; the first one's key is the PARTNER caller
        for records, token in ((w.own, w.tokens[ADMIN]), (w.other_venue, other_admin)):
            app = await call(http, token, "POST", "/api/v1/partners/apps", expect=201,
                             json={"name": "CRM sync"})  # fmt: skip
            records.app = app.json()["id"]
            if records is w.own:
                w.tokens[PARTNER] = app.json()["apiKey"]
        w.other_project.app = w.own.app
        # the venues' webhook endpoints, each with a delivery (its ping), to a local receiver
        for records, token in ((w.own, w.tokens[ADMIN]), (w.other_venue, other_admin)):
            endpoint = await call(http, token, "POST", "/api/v1/partners/webhooks", expect=201,
                                  json={"url": w.receiver, "eventTypes": ["gala.opportunity.won.v1"]})  # fmt: skip  # noqa: E501
            records.endpoint = endpoint.json()["id"]
            await call(http, token, "POST", f"/api/v1/partners/webhooks/{records.endpoint}/ping",
                       expect=202)  # fmt: skip
            deliveries = await until(
                lambda r=records, t=token: _listed(
                    call(http, t, "GET", f"/api/v1/partners/webhooks/{r.endpoint}/deliveries",
                         expect=200)
                )
            )  # fmt: skip
            records.delivery = deliveries[0]["id"]
        w.other_project.endpoint, w.other_project.delivery = w.own.endpoint, w.own.delivery
        # billing and chat know the CLIENT from the project's events
        await until(
            lambda: _ok(call(http, w.tokens[CLIENT], "GET", f"/api/v1/payments/{w.own.payment}",
                             expect=(200, 404)))
        )  # fmt: skip
        await until(
            lambda: _ok(call(http, w.tokens[CLIENT], "GET",
                             f"/api/v1/projects/{w.own.project}/messages", expect=(200, 403, 404)))
        )  # fmt: skip
        await until(
            lambda: _ok(call(http, w.tokens[STAFF], "GET",
                             f"/api/v1/projects/{w.own.project}/messages", expect=(200, 403, 404)))
        )  # fmt: skip
        yield w


# --- the rules ---------------------------------------------------------------------------

Body = Callable[[World, str, Records], Awaitable[dict[str, Any]]]
"""The request's keyword arguments (json=, content=...) for a role and the records."""


async def no_body(w: World, role: str, r: Records) -> dict[str, Any]:
    return {}


def json_body(value: dict[str, Any] | Callable[[World, Records], dict[str, Any]]) -> Body:
    async def body(w: World, role: str, r: Records) -> dict[str, Any]:
        return {"json": value(w, r) if callable(value) else value}

    return body


@dataclass(frozen=True)
class Rule:
    """What every role gets from one route.

    ``may``: the roles that get ``ok`` on their own venue's (and project's) record;
    any other role gets ``refused`` (or its entry in ``refused_as``). On another venue's
    record everyone gets 404 but a role that is refused anyway. On another project of the
    venue, STAFF and CLIENT get ``other_project`` where they may act on their own.
    ``public``: no login needed: every caller, anonymous included, gets ``ok``.
    ``fresh``: the request uses the record up; each cell gets a new one from ``make``.
    """

    may: frozenset[str] = frozenset()
    ok: int | tuple[int, ...] = 200
    refused: int = 403
    refused_as: dict[str, int] = field(default_factory=dict)
    other_project: int = 404
    body: Body = no_body
    public: bool = False
    make: Callable[[World, Records], Awaitable[Records]] | None = None
    lists: bool = False
    """A list: it must hold no record of another venue (nor, to STAFF and CLIENT, of
    another project)."""
    partner_route: bool = False
    """One of the partner routes, where an API key is accepted."""

    def expected(self, role: str, scope: str) -> int | tuple[int, ...]:
        if self.public:
            return self.ok
        if role == NOBODY:
            return 401
        if role == PARTNER and not self.partner_route:
            return 401  # an API key is not a session: it opens partner routes only
        own = self.ok if role in self.may else self.refused_as.get(role, self.refused)
        if scope == OTHER_VENUE:
            # never there: refused for the role or not found, nothing is revealed either way
            return 404 if own == self.ok or own == 404 else (own, 404)
        if scope == OTHER_PROJECT and role in (STAFF, CLIENT):
            return self.other_project if own == self.ok else (own, 404)
        return own


async def as_owner(
    w: World, r: Records, method: str, path: str, expect: int, **kw: Any
) -> dict[str, Any]:
    """A request by the ADMIN of the venue ``r`` belongs to; its JSON answer."""
    token = w.other_admin if r is w.other_venue else w.tokens[ADMIN]
    response = await call(w.http, token, method, path, expect=expect, **kw)
    return dict(response.json())


def with_record(r: Records, **changes: str) -> Records:
    return Records(**{**vars(r), **changes})


async def fresh_contact(w: World, r: Records) -> Records:
    email = f"{unique_name('e-')}@example.com"
    made = await as_owner(w, r, "POST", "/api/v1/contacts", 201,
                          json={"name": "Erase Me", "email": email})  # fmt: skip
    return with_record(r, contact=made["id"])


async def fresh_opportunity(w: World, r: Records) -> Records:
    event = (datetime.now(UTC) + timedelta(days=300)).date().isoformat() + "T18:00:00Z"
    made = await as_owner(w, r, "POST", "/api/v1/opportunities", 201,
                          json={"name": "Maybe", "contactId": r.contact, "value": "500.00",
                                "eventDate": event})  # fmt: skip
    return with_record(r, opportunity=made["id"])


async def fresh_task(w: World, r: Records) -> Records:
    assignee = {"assigneeId": w.user_ids[STAFF]} if r is w.own else {}
    made = await as_owner(w, r, "POST", f"/api/v1/projects/{r.project}/tasks", 201,
                          json={"title": "Spare", **assignee})  # fmt: skip
    return with_record(r, task=made["id"])


async def fresh_payment(w: World, r: Records) -> Records:
    due = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    made = await as_owner(w, r, "POST", "/api/v1/payments", 201,
                          json={"opportunityId": r.opportunity, "amount": "10.00",
                                "dueDate": due})  # fmt: skip
    payment = made["id"]
    if r is w.own:  # the CLIENT sees it once billing knows its project
        await until(
            lambda: _ok(call(w.http, w.tokens[CLIENT], "GET", f"/api/v1/payments/{payment}",
                             expect=(200, 404)))
        )  # fmt: skip
    return with_record(r, payment=payment)


async def fresh_document(w: World, r: Records) -> Records:
    made = await as_owner(
        w, r, "POST", f"/api/v1/documents?name=contract.pdf&projectId={r.project}", 201,
        content=PDF, headers={"Content-Type": "application/pdf"},
    )  # fmt: skip
    return with_record(r, document=made["id"])


async def fresh_app(w: World, r: Records) -> Records:
    """An app of the venue of ``r`` (rotating or revoking the PARTNER's own would end it)."""
    made = await as_owner(w, r, "POST", "/api/v1/partners/apps", 201, json={"name": "Spare"})
    return with_record(r, app=made["id"])


async def new_endpoint(w: World, role: str, r: Records) -> dict[str, Any]:
    return {"json": {"url": w.receiver, "eventTypes": ["gala.payment.*"]}}


async def fresh_endpoint(w: World, r: Records) -> Records:
    """An endpoint of the venue of ``r`` (deleting or disabling the shared one would end it)."""
    made = await as_owner(w, r, "POST", "/api/v1/partners/webhooks", 201,
                          json={"url": w.receiver, "eventTypes": ["gala.payment.*"]})  # fmt: skip
    return with_record(r, endpoint=made["id"])


TEMPLATE = {"durationHours": 4, "tasks": [{"title": "Menu", "daysBefore": 10}]}


async def fresh_template(w: World, r: Records) -> Records:
    await as_owner(w, r, "PUT", f"/api/v1/projects/templates/{EVENT_TYPE}", 200, json=TEMPLATE)
    return r


async def current_stages(w: World, role: str, r: Records) -> dict[str, Any]:
    stages = (await w.call(ADMIN, "GET", "/api/v1/pipeline/stages", expect=200)).json()
    keep = ("id", "name", "probability", "holdsRoom")
    return {"json": {"stages": [{k: stage[k] for k in keep} for stage in stages["stages"]]}}


async def signature(w: World, role: str, r: Records) -> dict[str, Any]:
    return {"json": {"signerName": "Client", "consent": True,
                     "sha256": hashlib.sha256(PDF).hexdigest()}}  # fmt: skip


async def pdf(w: World, role: str, r: Records) -> dict[str, Any]:
    return {"content": PDF, "headers": {"Content-Type": "application/pdf"}}


async def csv(w: World, role: str, r: Records) -> dict[str, Any]:
    row = f"name,email\nImported,{unique_name('i-')}@example.com\n"
    return {"content": row.encode(), "headers": {"Content-Type": "text/csv"}}


async def new_contact(w: World, role: str, r: Records) -> dict[str, Any]:
    return {"json": {"name": "New", "email": f"{unique_name('n-')}@example.com"}}


async def new_user(w: World, role: str, r: Records) -> dict[str, Any]:
    return {"json": {"authSubject": unique_name("user_"), "role": "STAFF",
                     "email": f"{unique_name('u-')}@example.com"}}  # fmt: skip


async def new_payment(w: World, role: str, r: Records) -> dict[str, Any]:
    due = (datetime.now(UTC) + timedelta(days=60)).date().isoformat()
    return {"json": {"opportunityId": r.opportunity, "amount": "5.00", "dueDate": due}}


def first_task(w: World, r: Records) -> str:
    """The task the project of ``r`` started with."""
    return next(x.task for x in (w.own, w.other_project, w.other_venue) if x.project == r.project)


async def recorded(w: World, role: str, r: Records) -> dict[str, Any]:
    return {"json": {"paymentMethod": "cash"}, "headers": {"Idempotency-Key": unique_name("k-")}}


async def form(w: World, role: str, r: Records) -> dict[str, Any]:
    return {"json": {"name": "Web Lead", "email": f"{unique_name('w-')}@example.com"}}


async def current_policy(w: World, role: str, r: Records) -> dict[str, Any]:
    policy = (await w.call(ADMIN, "GET", "/api/v1/billing/policy", expect=200)).json()
    keep = ("depositPercent", "depositDueDaysAfterWin", "balanceDueDaysBeforeEvent")
    return {"json": {key: policy[key] for key in keep}}


# Path parameters: which record of the scope each one names.
PARAMETERS: dict[str, Callable[[World, Records], Awaitable[str]]] = {}


def parameter(name: str) -> Callable[..., Any]:
    def register(resolve: Callable[[World, Records], Awaitable[str]]) -> Any:
        PARAMETERS[name] = resolve
        return resolve

    return register


def plain(kind: str) -> Callable[[World, Records], Awaitable[str]]:
    async def resolve(w: World, r: Records) -> str:
        return str(getattr(r, kind))

    return resolve


PLAIN_PARAMETERS = (
    "contact_id", "opportunity_id", "room_id", "user_id", "project_id", "task_id",
    "payment_id", "document_id", "app_id", "endpoint_id", "delivery_id", "import_id",
)  # fmt: skip
for _name, _kind in [
    ("contact_id", "contact"), ("opportunity_id", "opportunity"), ("room_id", "room"),
    ("user_id", "user"), ("project_id", "project"), ("task_id", "task"),
    ("payment_id", "payment"), ("document_id", "document"), ("app_id", "app"),
    ("endpoint_id", "endpoint"), ("delivery_id", "delivery"),
]:  # fmt: skip
    PARAMETERS[_name] = plain(_kind)


@parameter("import_id")
async def _import_id(w: World, r: Records) -> str:
    """An import job of the venue of ``r`` (made once, by its ADMIN)."""
    if not r.import_job:
        job = await as_owner(w, r, "POST", "/api/v1/contacts/import", 202,
                             content=f"name,email\nI,{unique_name('i-')}@example.com\n".encode(),
                             headers={"Content-Type": "text/csv"})  # fmt: skip
        r.import_job = str(job["id"])
    return r.import_job


@parameter("event_type")
async def _event_type(w: World, r: Records) -> str:
    return EVENT_TYPE


@parameter("client_link")
async def _client_link(w: World, r: Records) -> str:
    """The project's current link (a cell may have rotated it)."""
    project = await as_owner(w, r, "GET", f"/api/v1/projects/{r.project}", 200)
    return str(project["clientLink"]).rsplit("/", 1)[-1]


@parameter("venue_key")
async def _venue_key(w: World, r: Records) -> str:
    key = (await w.call(ADMIN, "GET", "/api/v1/contacts/intake-key", expect=200)).json()
    return str(key["key"])


RULES: dict[tuple[str, str], Rule] = {
    # contacts and users
    ("GET", "/api/v1/contacts"): Rule(CONTACT_ROLES, lists=True),
    ("POST", "/api/v1/contacts"): Rule(CONTACT_ROLES, ok=201, body=new_contact),
    ("GET", "/api/v1/contacts/{contact_id}"): Rule(CONTACT_ROLES),
    ("PATCH", "/api/v1/contacts/{contact_id}"): Rule(
        CONTACT_ROLES, body=json_body({"phone": "+33 6 12 34 56 78"})
    ),
    ("DELETE", "/api/v1/contacts/{contact_id}"): Rule(ONLY_ADMIN, ok=204, make=fresh_contact),
    ("GET", "/api/v1/contacts/{contact_id}/timeline"): Rule(CONTACT_ROLES),
    ("POST", "/api/v1/contacts/import"): Rule(CONTACT_ROLES, ok=202, body=csv),
    ("GET", "/api/v1/contacts/imports"): Rule(CONTACT_ROLES, lists=True),
    ("GET", "/api/v1/contacts/imports/{import_id}"): Rule(CONTACT_ROLES),
    ("GET", "/api/v1/contacts/export"): Rule(CONTACT_ROLES, lists=True),
    ("GET", "/api/v1/contacts/intake-key"): Rule(ONLY_ADMIN),
    ("POST", "/api/v1/contacts/intake-key/rotate"): Rule(ONLY_ADMIN),
    ("GET", "/api/v1/contacts/intake-meta-pages"): Rule(ONLY_ADMIN),
    ("PUT", "/api/v1/contacts/intake-meta-pages"): Rule(ONLY_ADMIN, body=json_body({"pages": []})),
    ("POST", "/api/v1/intake/{venue_key}"): Rule(public=True, ok=202, body=form),
    ("GET", "/api/v1/intake/meta"): Rule(public=True, ok=422),  # no hub.* handshake
    ("POST", "/api/v1/intake/meta"): Rule(public=True, ok=(401, 403, 503)),
    ("GET", "/api/v1/users/me"): Rule(EVERYONE),
    ("GET", "/api/v1/users"): Rule(STAFF_ROLES, lists=True),
    ("POST", "/api/v1/users"): Rule(ONLY_ADMIN, ok=201, body=new_user),
    ("GET", "/api/v1/users/{user_id}"): Rule(STAFF_ROLES),
    ("PATCH", "/api/v1/users/{user_id}"): Rule(ONLY_ADMIN, body=json_body({"name": "Renamed"})),
    # pipeline
    ("GET", "/api/v1/opportunities"): Rule(PIPELINE_READERS, lists=True),
    ("POST", "/api/v1/opportunities"): Rule(
        CONTACT_ROLES, ok=201, body=json_body(lambda w, r: {"name": "New", "contactId": r.contact})
    ),
    ("GET", "/api/v1/opportunities/{opportunity_id}"): Rule(PIPELINE_READERS),
    ("PATCH", "/api/v1/opportunities/{opportunity_id}"): Rule(
        CONTACT_ROLES, body=json_body({"guestCount": 120})
    ),
    ("POST", "/api/v1/opportunities/{opportunity_id}/win"): Rule(
        CONTACT_ROLES, make=fresh_opportunity
    ),
    ("POST", "/api/v1/opportunities/{opportunity_id}/lose"): Rule(
        CONTACT_ROLES, make=fresh_opportunity, body=json_body({"reason": "Went elsewhere"})
    ),
    ("GET", "/api/v1/pipeline/stages"): Rule(PIPELINE_READERS),
    ("PUT", "/api/v1/pipeline/stages"): Rule(CONTACT_ROLES, body=current_stages),
    ("GET", "/api/v1/pipeline/settings"): Rule(ONLY_ADMIN),
    ("PUT", "/api/v1/pipeline/settings"): Rule(ONLY_ADMIN, body=json_body({"currency": "EUR"})),
    ("GET", "/api/v1/pipeline/board"): Rule(PIPELINE_READERS, lists=True),
    ("GET", "/api/v1/rooms"): Rule(CONTACT_ROLES, lists=True),
    ("POST", "/api/v1/rooms"): Rule(
        CONTACT_ROLES,
        ok=201,
        body=json_body(lambda w, r: {"name": unique_name("Garden "), "capacity": 80}),
    ),
    ("GET", "/api/v1/rooms/{room_id}"): Rule(CONTACT_ROLES),
    # projects and tasks
    ("GET", "/api/v1/projects"): Rule(EVERYONE, lists=True),
    ("GET", "/api/v1/projects/{project_id}"): Rule(EVERYONE),
    ("PATCH", "/api/v1/projects/{project_id}"): Rule(
        MANAGERS, body=json_body({"name": "Renamed project"})
    ),
    ("POST", "/api/v1/projects/{project_id}/client-link/rotate"): Rule(MANAGERS),
    ("GET", "/api/v1/projects/{project_id}/tasks"): Rule(EVERYONE, lists=True),
    ("POST", "/api/v1/projects/{project_id}/tasks"): Rule(
        MANAGERS, ok=201, body=json_body({"title": "Another task"})
    ),
    ("GET", "/api/v1/projects/templates"): Rule(STAFF_ROLES),
    ("GET", "/api/v1/projects/templates/{event_type}"): Rule(STAFF_ROLES, make=fresh_template),
    ("PUT", "/api/v1/projects/templates/{event_type}"): Rule(MANAGERS, body=json_body(TEMPLATE)),
    ("DELETE", "/api/v1/projects/templates/{event_type}"): Rule(
        MANAGERS, ok=204, make=fresh_template
    ),
    ("GET", "/api/v1/tasks"): Rule(EVERYONE, lists=True),
    ("GET", "/api/v1/tasks/{task_id}"): Rule(EVERYONE),
    ("PATCH", "/api/v1/tasks/{task_id}"): Rule(
        MANAGERS | {STAFF}, body=json_body({"status": "IN_PROGRESS"})
    ),
    ("DELETE", "/api/v1/tasks/{task_id}"): Rule(MANAGERS, ok=204, make=fresh_task),
    ("POST", "/api/v1/tasks/{task_id}/move"): Rule(
        MANAGERS, make=fresh_task, body=json_body(lambda w, r: {"before": first_task(w, r)})
    ),
    ("GET", "/api/v1/portal/{client_link}"): Rule(public=True),
    # chat
    ("GET", "/api/v1/projects/{project_id}/messages"): Rule(
        CHAT_TEAM | {STAFF, CLIENT}, other_project=403
    ),
    ("POST", "/api/v1/projects/{project_id}/messages"): Rule(
        CHAT_TEAM | {STAFF, CLIENT},
        ok=201,
        other_project=403,
        body=json_body({"content": "Hello"}),
    ),
    ("GET", "/api/v1/projects/{project_id}/messages/since"): Rule(
        CHAT_TEAM | {STAFF, CLIENT}, other_project=403
    ),
    ("POST", "/api/v1/projects/{project_id}/messages/read"): Rule(
        CHAT_TEAM | {STAFF, CLIENT},
        ok=(200, 204),
        other_project=403,
        body=json_body({"seq": 0}),
    ),
    ("GET", "/api/v1/messages/unread"): Rule(EVERYONE, lists=True),
    # partners: the published contract is public, like the API's own docs
    ("GET", "/api/v1/events/asyncapi.json"): Rule(public=True),
    ("GET", "/api/v1/events/docs"): Rule(public=True),
    # partners
    ("POST", "/api/v1/partners/apps"): Rule(
        ONLY_ADMIN, ok=201, partner_route=True, body=json_body({"name": "Another app"})
    ),
    ("GET", "/api/v1/partners/apps"): Rule(ONLY_ADMIN, partner_route=True, lists=True),
    ("GET", "/api/v1/partners/apps/{app_id}"): Rule(ONLY_ADMIN, partner_route=True),
    ("POST", "/api/v1/partners/apps/{app_id}/keys/rotate"): Rule(
        ONLY_ADMIN, partner_route=True, make=fresh_app
    ),
    ("POST", "/api/v1/partners/apps/{app_id}/revoke"): Rule(
        ONLY_ADMIN, partner_route=True, make=fresh_app
    ),
    ("GET", "/api/v1/partners/events"): Rule(
        frozenset({ADMIN, PARTNER}), partner_route=True, lists=True
    ),
    **{
        (method, f"/api/v1/partners/webhooks{path}"): Rule(
            frozenset({ADMIN, PARTNER}),
            ok=ok,
            partner_route=True,
            lists=lists,
            body=body,
            make=make,
        )
        for method, path, ok, lists, body, make in (
            ("POST", "", 201, False, new_endpoint, None),
            ("GET", "", 200, True, no_body, None),
            ("GET", "/{endpoint_id}", 200, False, no_body, None),
            ("PATCH", "/{endpoint_id}", 200, False, json_body({"description": "CRM"}), None),
            ("DELETE", "/{endpoint_id}", 204, False, no_body, fresh_endpoint),
            ("POST", "/{endpoint_id}/disable", 200, False, no_body, fresh_endpoint),
            ("POST", "/{endpoint_id}/enable", 200, False, no_body, fresh_endpoint),
            ("POST", "/{endpoint_id}/secret/rotate", 200, False, no_body, None),
            ("POST", "/{endpoint_id}/ping", 202, False, no_body, None),
            ("GET", "/{endpoint_id}/deliveries", 200, True, no_body, None),
            ("GET", "/{endpoint_id}/deliveries/{delivery_id}", 200, False, no_body, None),
            (
                "POST",
                "/{endpoint_id}/deliveries/{delivery_id}/redeliver",
                202,
                False,
                no_body,
                None,
            ),
            (
                "POST",
                "/{endpoint_id}/recover",
                202,
                False,
                json_body({"since": "2026-01-01T00:00:00Z"}),
                None,
            ),
        )
    },
    # billing
    ("GET", "/api/v1/billing/policy"): Rule(BILLING_READERS),
    ("PUT", "/api/v1/billing/policy"): Rule(ONLY_ADMIN, body=current_policy),
    ("GET", "/api/v1/payments"): Rule(BILLING_READERS | {CLIENT}, lists=True),
    ("POST", "/api/v1/payments"): Rule(BILLING_WRITERS, ok=201, body=new_payment),
    ("GET", "/api/v1/payments/{payment_id}"): Rule(BILLING_READERS | {CLIENT}),
    ("PATCH", "/api/v1/payments/{payment_id}"): Rule(
        BILLING_WRITERS, body=json_body({"paymentMethod": "bank transfer"})
    ),
    ("POST", "/api/v1/payments/{payment_id}/record"): Rule(
        BILLING_WRITERS, make=fresh_payment, body=recorded
    ),
    ("POST", "/api/v1/payments/{payment_id}/resolve"): Rule(
        BILLING_WRITERS, body=json_body({"note": "Checked with the client"})
    ),
    ("POST", "/api/v1/payments/{payment_id}/checkout"): Rule(
        BILLING_WRITERS | {CLIENT}, ok=(200, 201), make=fresh_payment
    ),
    ("POST", "/api/v1/billing/stripe/webhook"): Rule(public=True, ok=400),
    ("GET", "/api/v1/documents"): Rule(BILLING_READERS | {CLIENT}, lists=True),
    ("POST", "/api/v1/documents"): Rule(BILLING_READERS, ok=201, body=pdf),
    ("GET", "/api/v1/documents/{document_id}"): Rule(BILLING_READERS | {CLIENT}),
    ("PUT", "/api/v1/documents/{document_id}/content"): Rule(
        BILLING_READERS, body=pdf, make=fresh_document
    ),
    # the signed link is the credential: without its signature, nobody gets the file
    ("GET", "/api/v1/documents/{document_id}/content"): Rule(public=True, ok=422),
    ("POST", "/api/v1/documents/{document_id}/sign"): Rule(
        frozenset({CLIENT}), body=signature, make=fresh_document
    ),
}
"""Every route the gateway serves, and who may use it (architecture.md, Guarantee 5).

A POST /documents needs a query (name, projectId): see ``QUERIES``."""

QUERIES: dict[tuple[str, str], Callable[[World, Records], str]] = {
    ("POST", "/api/v1/documents"): lambda w, r: f"name=contract.pdf&projectId={r.project}",
    ("GET", "/api/v1/projects/{project_id}/messages/since"): lambda w, r: "after=0",
}


# --- the test ------------------------------------------------------------------------------


async def merged_routes(w: World) -> set[tuple[str, str]]:
    document = (await w.http.get("/api/v1/openapi.json")).json()
    return {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
        if method in ("get", "post", "put", "patch", "delete")
    }


async def test_every_route_has_a_rule(world: World) -> None:
    routes = await merged_routes(world)
    assert sorted(routes - RULES.keys()) == [], "routes without an access rule"
    assert sorted(RULES.keys() - routes) == [], "rules for routes the gateway does not serve"


def cells() -> list[Any]:
    found = []
    for (method, path), rule in RULES.items():
        scoped = _venue_scoped(path) and not rule.public
        scopes = (OWN, OTHER_PROJECT, OTHER_VENUE) if scoped else (OWN,)
        for role in (*ROLES, NOBODY):
            for scope in scopes:
                if scope == OTHER_PROJECT and not _project_scoped(path):
                    continue
                found.append(pytest.param(method, path, role, scope,
                                          id=f"{method} {path} [{role}, {scope}]"))  # fmt: skip
    return found


def _venue_scoped(path: str) -> bool:
    """The path names a record of one venue (a template's event type names none)."""
    return any("{" + name + "}" in path for name in PLAIN_PARAMETERS)


def _project_scoped(path: str) -> bool:
    return any(p in path for p in ("{project_id}", "{task_id}", "{payment_id}", "{document_id}"))


@pytest.mark.parametrize(("method", "path", "role", "scope"), cells())
async def test_access(world: World, method: str, path: str, role: str, scope: str) -> None:
    rule = RULES[(method, path)]
    records = world.records(scope)
    if rule.make is not None:
        records = await rule.make(world, records)
    target = path
    for name, resolve in PARAMETERS.items():
        if "{" + name + "}" in target:
            target = target.replace("{" + name + "}", await resolve(world, records))
    if query := QUERIES.get((method, path)):
        target += "?" + query(world, records)
    kwargs = await rule.body(world, role, records)
    expected = rule.expected(role, scope)
    token = None if role == NOBODY else world.tokens[role]
    response = await call(world.http, token, method, target, expect=expected, **kwargs)
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json")
    if rule.lists and response.status_code == 200 and role != NOBODY:
        text = response.text
        leaked = [i for i in world.foreign_ids(role) if i and i in text]
        assert not leaked, f"{role} sees records not theirs: {leaked}"


async def test_taking_access_away_takes_it_at_once(world: World) -> None:
    """A CLIENT taken off the project, and a STAFF user unassigned from their task, lose
    the project in every service within seconds (and get it back when given back)."""
    w = world
    own = w.own
    client_routes = [
        f"/api/v1/projects/{own.project}", f"/api/v1/payments/{own.payment}",
        f"/api/v1/documents/{own.document}", f"/api/v1/projects/{own.project}/messages",
        f"/api/v1/tasks/{own.task}",
    ]  # fmt: skip
    staff_routes = [
        f"/api/v1/projects/{own.project}", f"/api/v1/tasks/{own.task}",
        f"/api/v1/projects/{own.project}/messages",
    ]  # fmt: skip

    async def answers(role: str, routes: list[str]) -> list[int]:
        statuses = []
        for route in routes:
            response = await call(w.http, w.tokens[role], "GET", route, expect=(200, 403, 404))
            statuses.append(response.status_code)
        return statuses

    assert await answers(CLIENT, client_routes) == [200] * len(client_routes)
    assert await answers(STAFF, staff_routes) == [200] * len(staff_routes)
    await w.call(ADMIN, "PATCH", f"/api/v1/projects/{own.project}", expect=200,
                 json={"clientIds": []})  # fmt: skip
    tasks = await w.call(ADMIN, "GET", f"/api/v1/projects/{own.project}/tasks?limit=200",
                         expect=200)  # fmt: skip
    theirs = [t["id"] for t in tasks.json()["items"] if t.get("assigneeId") == w.user_ids[STAFF]]
    assert own.task in theirs
    for task in theirs:  # every task of the project the STAFF user was given
        await w.call(ADMIN, "PATCH", f"/api/v1/tasks/{task}", expect=200,
                     json={"assigneeId": None})  # fmt: skip
    loop = asyncio.get_running_loop()
    started = loop.time()
    await until(lambda: _all_refused(answers(CLIENT, client_routes)), timeout=10)
    await until(lambda: _all_refused(answers(STAFF, staff_routes)), timeout=10)
    assert loop.time() - started < 10
    # given back
    await w.call(ADMIN, "PATCH", f"/api/v1/projects/{own.project}", expect=200,
                 json={"clientIds": [w.user_ids[CLIENT]]})  # fmt: skip
    await w.call(ADMIN, "PATCH", f"/api/v1/tasks/{own.task}", expect=200,
                 json={"assigneeId": w.user_ids[STAFF]})  # fmt: skip
    await until(lambda: _all_ok(answers(CLIENT, client_routes)), timeout=10)
    await until(lambda: _all_ok(answers(STAFF, staff_routes)), timeout=10)


async def _all_refused(statuses: Awaitable[list[int]]) -> bool:
    return all(status in (403, 404) for status in await statuses)


async def _all_ok(statuses: Awaitable[list[int]]) -> bool:
    return all(status == 200 for status in await statuses)
