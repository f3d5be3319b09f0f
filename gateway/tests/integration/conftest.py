"""A running gateway in front of a real contacts service, with a test JWKS server.

The other upstreams are small stand-ins served over real HTTP: a "pipeline" with a slow
endpoint, an identity echo and a big answer, a "chat" WebSocket echo, and "projects"/"billing"/
"partners" on ports where nothing listens (down).
"""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from fastapi import FastAPI, Request, WebSocket
from starlette.responses import Response, StreamingResponse

from contacts.bootstrap import service as contacts_service
from gala.app import ProcessRole, create_app
from gala.identity import IDENTITY_HEADER, InternalTokens
from gala.settings import Settings
from gala.testing import free_port, http_server, unique_name
from gateway.app import create_app as create_gateway
from gateway.devauth import SigningKey, jwks
from gateway.settings import GatewaySettings

ISSUER = "https://clerk.gala.test"
APP_PARTY = "https://app.gala.test"
SECRET = "integration-test-internal-secret-0123456789"
BIG_ANSWER = bytes(range(256)) * 4096  # 1 MiB


@dataclass
class KeyRing:
    """The keys the test identity provider publishes (rotation adds one)."""

    published: list[SigningKey] = field(default_factory=lambda: [SigningKey.generate()])

    @property
    def current(self) -> SigningKey:
        return self.published[-1]


@dataclass
class System:
    gateway: str
    contacts: str
    keys: KeyRing
    tokens: InternalTokens

    def token(self, subject: str, *, key: SigningKey | None = None, **claims) -> str:
        claims.setdefault("authorized_party", APP_PARTY)
        issuer = claims.pop("issuer", ISSUER)
        return (key or self.keys.current).mint(subject, issuer=issuer, **claims)

    def bearer(self, subject: str, **claims) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(subject, **claims)}"}


def identity_provider(keys: KeyRing) -> FastAPI:
    app = FastAPI()

    @app.get("/.well-known/jwks.json")
    async def published() -> dict:
        return jwks(*keys.published)

    return app


def pipeline_stand_in(tokens: InternalTokens) -> FastAPI:
    app = FastAPI()

    @app.get("/api/v1/rooms/slow")
    async def slow() -> dict:
        await asyncio.sleep(5)
        return {}

    @app.get("/api/v1/rooms/echo")
    async def echo_get(request: Request) -> dict:
        return await echo(request)

    @app.get("/api/v1/rooms/big")
    async def big(sized: bool = False) -> Response:
        """BIG_ANSWER, with its length (larger than what the gateway reads whole) or
        streamed in chunks without one."""
        if sized:
            return Response(BIG_ANSWER, media_type="application/octet-stream")

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(BIG_ANSWER), 100_000):
                yield BIG_ANSWER[start : start + 100_000]
                await asyncio.sleep(0)

        return StreamingResponse(chunks(), media_type="application/octet-stream")

    @app.post("/api/v1/rooms/echo")
    async def echo(request: Request) -> dict:
        principal = tokens.verify(request.headers.get(IDENTITY_HEADER))
        body = await request.body()
        return {
            "principal": principal.model_dump(mode="json"),
            "bytes": len(body),
            "requestId": request.headers.get("x-request-id"),
            "authorization": request.headers.get("authorization"),
            "rawPath": request.scope["raw_path"].decode(),
            "query": request.scope["query_string"].decode(),
            "forwardedFor": request.headers.get("x-forwarded-for"),
        }

    return app


def chat_stand_in(tokens: InternalTokens) -> FastAPI:
    app = FastAPI()

    @app.websocket("/api/v1/projects/{project_id}/chat")
    async def chat(websocket: WebSocket, project_id: str) -> None:
        principal = tokens.verify(websocket.headers.get(IDENTITY_HEADER))
        offered = websocket.scope.get("subprotocols", [])
        await websocket.accept(subprotocol=offered[0] if offered else None)
        await websocket.send_json({"project": project_id, "user": principal.user_id})
        async for text in websocket.iter_text():
            await websocket.send_text(f"echo:{text}")

    return app


@pytest.fixture(scope="module")
async def system(infra):
    keys = KeyRing()
    tokens = InternalTokens(SECRET)
    contacts_settings = Settings(
        kafka_bootstrap=infra.kafka_bootstrap,
        mongo_url=infra.mongo_url,
        mongo_database=unique_name("gala_gateway_contacts_"),
        internal_token_secret=SECRET,
    )
    down = f"http://127.0.0.1:{free_port()}"
    async with (
        http_server(identity_provider(keys)) as idp,
        http_server(create_app(contacts_service, ProcessRole.API, contacts_settings)) as contacts,
        http_server(pipeline_stand_in(tokens)) as pipeline,
        http_server(chat_stand_in(tokens)) as chat,
    ):
        settings = GatewaySettings(
            contacts_url=contacts,
            pipeline_url=pipeline,
            chat_url=chat,
            projects_url=down,
            billing_url=down,
            partners_url=down,
            auth_jwks_url=f"{idp}/.well-known/jwks.json",
            auth_issuer=ISSUER,
            auth_authorized_parties=[APP_PARTY],
            internal_token_secret=SECRET,
            upstream_timeout_seconds=1.0,
            upstream_connect_timeout_seconds=0.5,
            upstream_retries=1,
            auth_directory_cache_seconds=0,
            rate_limit_per_minute=60,
            rate_limit_burst=20,
            max_body_bytes=65_536,
            cors_origins=[APP_PARTY],
        )
        async with http_server(create_gateway(settings)) as gateway:
            yield System(gateway=gateway, contacts=contacts, keys=keys, tokens=tokens)
