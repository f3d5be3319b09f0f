"""A venue's first journey, lead to project, through the gateway only, and a crash of the
projects service in the middle of it.

Contacts, pipeline, projects and the gateway (dev mode) run as processes, each service
with a database and a consumer group of its own; each group starts at the end of the
topics it reads (``start_groups_at_end``), so the services see this journey's events and
none of the shared topics' history. The first ADMIN is made with ``gala users add`` and
logs in with ``gala dev-token``. Then:

- a contact, a WEDDING opportunity for them, won: the project appears with the wedding
  template's tasks in order, due before the event, and the contact becomes a CUSTOMER;
- the projects process is SIGKILLed; 20 more opportunities are won meanwhile; restarted
  with the same database and group, it makes exactly one project for each of them: 21
  projects, one per won opportunity, and still 21 a while later.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from contacts.bootstrap import service as contacts_service
from gala.app import ServiceDefinition
from gala.settings import Settings
from gala.testing import ServiceProcess, eventually, gala_cli, unique_name
from pipeline.bootstrap import service as pipeline_service
from projects.bootstrap import service as projects_service
from projects.projects.domain import project_id_for
from tests.e2e.system import whole_system

SERVICES: tuple[ServiceDefinition, ...] = (contacts_service, pipeline_service, projects_service)
EVENT_DATE = "2027-06-12T15:00:00Z"
WEDDING_TASKS = [
    "Menu tasting",
    "Floor plan",
    "Final headcount",
    "Run sheet",
    "Staff and suppliers confirmed",
]
MORE_WON = 20


def when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_won_opportunity_becomes_one_project_even_across_a_crash(
    infra: Settings, tmp_path: Path
) -> None:
    # one caller polls a lot: the edge's per-caller limit is not under test here
    limits = {"GALA_RATE_LIMIT_PER_MINUTE": "100000", "GALA_RATE_LIMIT_BURST": "10000"}
    async with whole_system(infra, tmp_path, extra_env=limits, services=SERVICES) as system:
        try:
            await journey(system.env, system.gateway, system.processes["projects"])
        except BaseException:
            for name, process in system.processes.items():
                print(f"--- {name} output (last lines) ---\n{process.output()[-6000:]}")
            raise


async def journey(env: dict[str, str], gateway: str, projects: ServiceProcess) -> None:
    venue = unique_name("venue-")
    email = f"{unique_name('owner-')}@example.com"
    created = await gala_cli(
        env, "users", "add", "--venue", venue, "--email", email, "--role", "ADMIN",
        "--subject", unique_name("user_"), "--name", "Owner",
    )  # fmt: skip
    assert '"role": "ADMIN"' in created
    token = await gala_cli(env, "dev-token", "--email", email)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=gateway, headers=headers, timeout=15) as api:
        contact = await api.post(
            "/api/v1/contacts",
            json={"name": "Ada Lovelace", "email": "ada@example.com", "leadSource": "WEBSITE"},
        )
        assert contact.status_code == 201, contact.text
        contact_id = contact.json()["id"]

        # the pipeline knows the contact once it has consumed the contact's created event
        first = await eventually(lambda: new_opportunity(api, contact_id, "Wedding 0"), timeout=30)
        assert first is not None
        await win(api, first)

        async def first_project_and_customer() -> dict[str, Any] | None:
            found = await all_projects(api, opportunityId=first)
            if not found:
                return None
            customer = await api.get(f"/api/v1/contacts/{contact_id}")
            assert customer.status_code == 200, customer.text
            return found[0] if customer.json()["status"] == "CUSTOMER" else None

        project = await eventually(first_project_and_customer, timeout=60, interval=0.2)
        assert project is not None
        assert project["id"] == project_id_for(first)
        assert project["opportunityId"] == first
        assert project["status"] == "ACTIVE"
        assert project["taskCount"] == len(WEDDING_TASKS)
        assert when(project["startDate"]) == when(EVENT_DATE)
        tasks = await api.get(f"/api/v1/projects/{project['id']}/tasks")
        assert tasks.status_code == 200, tasks.text
        items = tasks.json()["items"]
        assert [t["title"] for t in items] == WEDDING_TASKS
        assert [t["position"] for t in items] == list(range(len(WEDDING_TASKS)))
        due = [when(t["dueDate"]) for t in items]
        assert all(d < when(EVENT_DATE) for d in due), due
        assert due == sorted(due)

        # the projects service dies mid-stream; opportunities keep being won meanwhile
        await projects.kill()
        won = [first]
        for n in range(1, MORE_WON + 1):
            opportunity = await new_opportunity(api, contact_id, f"Wedding {n}")
            assert opportunity is not None, "the pipeline forgot the contact"
            await win(api, opportunity)
            won.append(opportunity)
        assert len(set(won)) == MORE_WON + 1
        await projects.start()

        async def every_won_has_its_project() -> list[dict[str, Any]] | None:
            found = await all_projects(api)
            assert len(found) <= len(won), f"{len(found)} projects for {len(won)} won"
            return found if len(found) == len(won) else None

        found = await eventually(every_won_has_its_project, timeout=60, interval=0.5)
        assert found is not None
        opportunity_ids = [p["opportunityId"] for p in found]
        assert sorted(opportunity_ids) == sorted(won)  # each won one, none twice
        assert sorted(p["id"] for p in found) == sorted(project_id_for(o) for o in won)
        assert all(p["taskCount"] == len(WEDDING_TASKS) for p in found)

        await asyncio.sleep(3)  # a late redelivery would make a second project now
        again = await all_projects(api)
        assert sorted(p["opportunityId"] for p in again) == sorted(won)


async def new_opportunity(api: httpx.AsyncClient, contact_id: str, name: str) -> str | None:
    """The new opportunity's id; ``None`` while the pipeline does not know the contact."""
    response = await api.post(
        "/api/v1/opportunities",
        json={
            "name": name,
            "contactId": contact_id,
            "eventType": "WEDDING",
            "eventDate": EVENT_DATE,
            "guestCount": 120,
            "value": "12000.00",
        },
    )
    if response.status_code == 422 and response.json().get("contactId") == contact_id:
        return None  # UnknownContact: the pipeline has not consumed the contact yet
    assert response.status_code == 201, response.text
    opportunity_id: str = response.json()["id"]
    return opportunity_id


async def win(api: httpx.AsyncClient, opportunity_id: str) -> None:
    response = await api.post(f"/api/v1/opportunities/{opportunity_id}/win")
    assert response.status_code == 200, response.text


async def all_projects(api: httpx.AsyncClient, **filters: str) -> list[dict[str, Any]]:
    """Every project of the venue, page after page (small pages: paging is exercised)."""
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params = {**filters, "limit": "8", **({"cursor": cursor} if cursor else {})}
        response = await api.get("/api/v1/projects", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        found += page["items"]
        cursor = page["nextCursor"]
        if not cursor:
            return found
