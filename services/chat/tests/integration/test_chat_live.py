"""The chat WebSocket on two replicas of the service: fan-out through the bus, the same
order everywhere, resume without gap or duplicate, members only."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from chat.bootstrap import service
from chat.live.broadcast import hub_of
from gala.app import ProcessRole, create_app
from gala.contracts.projects import ProjectCreated
from gala.identity import IDENTITY_HEADER, Principal, Role
from gala.settings import Settings
from gala.testing import (
    eventually,
    http_server,
    own_database,
    publish_event,
    wait_until_assigned,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


class Replica:
    def __init__(self, app: Any, url: str) -> None:
        self.app = app
        self.url = url
        self.runtime = app.state.runtime

    def headers(self, who: Principal) -> dict[str, str]:
        return {IDENTITY_HEADER: self.runtime.tokens.issue(who)}

    def socket(self, who: Principal, project_id: str, after: int | None = None):
        url = self.url.replace("http", "ws", 1) + f"/api/v1/projects/{project_id}/chat"
        if after is not None:
            url += f"?after={after}"
        return connect(url, additional_headers=self.headers(who))

    async def post(self, who: Principal, project_id: str, content: str) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.url) as client:
            response = await client.post(
                f"/api/v1/projects/{project_id}/messages",
                json={"content": content},
                headers=self.headers(who),
            )
        assert response.status_code == 201, response.text
        return response.json()


@asynccontextmanager
async def replicas(infra: Settings, count: int = 2) -> AsyncIterator[list[Replica]]:
    """``count`` chat replicas on real ports, one database and consumer group."""
    async with own_database(service, infra) as settings, AsyncExitStack() as stack:
        running = []
        for _ in range(count):
            app = create_app(service, ProcessRole.ALL, settings)
            url = await stack.enter_async_context(http_server(app))
            running.append(Replica(app, url))
        for replica in running:
            await wait_until_assigned(replica.runtime)
            await asyncio.wait_for(hub_of(replica.runtime).ready.wait(), 30)
        yield running


async def messages(socket: ClientConnection, count: int, timeout: float = 20) -> list[dict]:
    received: list[dict] = []
    async with asyncio.timeout(timeout):
        while len(received) < count:
            frame = json.loads(await socket.recv())
            if frame["type"] == "message":
                received.append(frame["message"])
    return received


async def quiet(socket: ClientConnection, seconds: float = 1.0) -> list[dict]:
    """Message frames that arrive within ``seconds`` (expected: none)."""
    extra = []
    try:
        async with asyncio.timeout(seconds):
            while True:
                frame = json.loads(await socket.recv())
                if frame["type"] == "message":
                    extra.append(frame)
    except TimeoutError:
        return extra


@pytest.fixture
def project_on():
    """Make a project known to the replicas (its created event, as projects publishes it)."""

    async def make(replica: Replica, venue: str, clients: list[Principal]) -> str:
        project_id = f"project-{uuid.uuid4().hex[:10]}"
        moment = datetime(2027, 6, 12, tzinfo=UTC)
        created = ProjectCreated(
            project_id=project_id, venue_id=venue, opportunity_id=str(uuid.uuid4()),
            name="Smith wedding", status="ACTIVE", start_date=moment,
            end_date=moment + timedelta(hours=12), client_ids=[c.user_id for c in clients],
        )  # fmt: skip
        await publish_event(replica.runtime, created, project_id)

        async def known() -> bool:
            store = replica.runtime.store
            return await store["messages"].find_one({"projectId": project_id}) is not None

        await eventually(known)
        return project_id

    return make


def people(venue: str) -> tuple[Principal, Principal]:
    client = Principal(user_id=f"client-{uuid.uuid4().hex[:6]}", venue_id=venue, role=Role.CLIENT)
    admin = Principal(user_id=f"admin-{uuid.uuid4().hex[:6]}", venue_id=venue, role=Role.ADMIN)
    return client, admin


async def test_two_clients_on_two_replicas_see_the_same_messages_in_the_same_order(
    infra, project_on
):
    async with replicas(infra) as (one, two):
        venue = "venue-live-1"
        client, admin = people(venue)
        project_id = await project_on(one, venue, [client])
        async with one.socket(client, project_id) as mine, two.socket(admin, project_id) as theirs:
            for n in range(5):  # over the socket on replica one, over HTTP on replica two
                await mine.send(json.dumps({"type": "message", "content": f"client {n}"}))
                await two.post(admin, project_id, f"admin {n}")
            seen_by_client = await messages(mine, 10)
            seen_by_admin = await messages(theirs, 10)
            assert [m["seq"] for m in seen_by_client] == list(range(2, 12))
            assert [m["id"] for m in seen_by_client] == [m["id"] for m in seen_by_admin]
            assert {m["content"] for m in seen_by_admin} == {
                *(f"client {n}" for n in range(5)),
                *(f"admin {n}" for n in range(5)),
            }
            assert await quiet(mine) == [] and await quiet(theirs) == []
            # typing reaches the other replica's socket, never stored
            await theirs.send(json.dumps({"type": "typing"}))
            async with asyncio.timeout(10):
                while True:
                    frame = json.loads(await mine.recv())
                    if frame["type"] == "typing":
                        assert frame["userId"] == admin.user_id
                        break


async def test_a_client_that_was_away_resumes_with_all_it_missed_once(infra, project_on):
    async with replicas(infra) as (one, two):
        venue = "venue-live-2"
        client, admin = people(venue)
        project_id = await project_on(one, venue, [client])
        async with one.socket(client, project_id) as socket:
            frame = {"type": "message", "content": "before the tunnel", "ref": "r-1"}
            await socket.send(json.dumps(frame))
            got: dict[str, dict] = {}
            async with asyncio.timeout(10):  # the message, and the ack that it was stored
                while len(got) < 2:
                    frame = json.loads(await socket.recv())
                    if frame["type"] in ("message", "ack"):
                        got[frame["type"]] = frame
            last, ack = got["message"]["message"], got["ack"]
            assert (ack["ref"], ack["seq"], ack["id"]) == ("r-1", last["seq"], last["id"])
        for n in range(50):
            await two.post(admin, project_id, f"while away {n}")
        async with two.socket(client, project_id, after=last["seq"]) as socket:
            missed = await messages(socket, 50)
            assert [m["seq"] for m in missed] == list(range(last["seq"] + 1, last["seq"] + 51))
            assert [m["content"] for m in missed] == [f"while away {n}" for n in range(50)]
            assert await quiet(socket) == []


async def test_a_non_member_is_refused_on_the_socket(infra, project_on):
    async with replicas(infra, count=1) as (one,):
        venue = "venue-live-3"
        client, _ = people(venue)
        project_id = await project_on(one, venue, [client])
        stranger = Principal(user_id="someone-else", venue_id=venue, role=Role.CLIENT)
        staff = Principal(user_id="staff-x", venue_id=venue, role=Role.STAFF)
        for who, code in ((stranger, 4403), (staff, 4403)):
            async with one.socket(who, project_id) as socket:
                with pytest.raises(ConnectionClosed) as closed:
                    await socket.recv()
                assert closed.value.rcvd is not None and closed.value.rcvd.code == code
        async with one.socket(client, "no-such-project") as socket:
            with pytest.raises(ConnectionClosed) as closed:
                await socket.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4404
