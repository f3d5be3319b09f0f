"""The gateway's HTTP app: health, docs, the dev JWKS, the chat socket and the API proxy."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI, Request, WebSocket
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.responses import Response

from gala.api import client_address
from gala.context import request_id
from gala.errors import GalaError, NotFound, Unauthorized, install_problem_handlers
from gala.health import health_router
from gala.identity import InternalTokens, Principal
from gala.metrics import HttpMetricsMiddleware, metrics_router
from gala.middleware import RequestMiddleware
from gala.tracing import native_telemetry
from gateway.auth import JwksCache, SessionVerifier
from gateway.devauth import SigningKey, jwks
from gateway.directory import UserDirectory
from gateway.edge import RateLimiter, SecurityHeadersMiddleware
from gateway.openapi import MergedOpenApi
from gateway.partnerkeys import PartnerKeys, is_partner_key
from gateway.paths import PathGuardMiddleware, checked_target, forwardable_path
from gateway.proxy import Upstreams, limited_stream, read_body
from gateway.routing import API_PREFIX, route_for
from gateway.settings import SERVICES, GatewaySettings
from gateway.websocket import (
    CLOSE_BAD_REQUEST,
    CLOSE_FORBIDDEN,
    CLOSE_TRY_AGAIN,
    CLOSE_UNAUTHORIZED,
    proxy_socket,
    refuse,
    socket_token,
)

ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


@dataclass
class Gateway:
    """The gateway's live parts, made at start-up."""

    settings: GatewaySettings
    upstreams: Upstreams
    verifier: SessionVerifier
    jwks: JwksCache
    directory: UserDirectory
    partner_keys: PartnerKeys
    tokens: InternalTokens
    limiter: RateLimiter
    partner_limiter: RateLimiter
    openapi: MergedOpenApi
    http: httpx.AsyncClient

    async def principal(self, bearer: str | None, *, partner_route: bool = False) -> Principal:
        """Who calls: a session's user, or on partner routes a partner app's key."""
        if is_partner_key(bearer):
            assert bearer is not None
            if not partner_route:
                raise Unauthorized(
                    "A partner API key works only on /api/v1/partners/... and"
                    " /api/v1/events...; this route needs a session token."
                )
            principal = await self.partner_keys.principal_for(bearer)
            self.partner_limiter.check(principal.user_id)  # per partner app
            return principal
        claims = await self.verifier.verify(bearer)
        principal = await self.directory.principal_for(claims["sub"])
        self.limiter.check(f"user:{principal.user_id}")
        return principal

    async def close(self) -> None:
        await self.upstreams.close()
        await self.http.aclose()


def build(settings: GatewaySettings) -> Gateway:
    tokens = InternalTokens(
        settings.internal_token_secret.get_secret_value(), settings.internal_token_ttl_seconds
    )
    upstreams = Upstreams(
        {service: settings.upstream(service) for service in SERVICES},
        connect_timeout=settings.upstream_connect_timeout_seconds,
        timeout=settings.upstream_timeout_seconds,
        pool_size=settings.upstream_pool_size,
        retries=settings.upstream_retries,
    )
    http = httpx.AsyncClient(timeout=5.0)
    keys = JwksCache(settings.jwks_url(), http, ttl_seconds=settings.auth_jwks_cache_seconds)
    return Gateway(
        settings=settings,
        upstreams=upstreams,
        verifier=SessionVerifier(
            keys,
            issuer=settings.issuer(),
            authorized_parties=settings.auth_authorized_parties,
            leeway_seconds=settings.auth_leeway_seconds,
        ),
        jwks=keys,
        directory=UserDirectory(
            upstreams.clients["contacts"],
            tokens,
            ttl_seconds=settings.auth_directory_cache_seconds,
        ),
        partner_keys=PartnerKeys(
            upstreams.clients["partners"],
            tokens,
            ttl_seconds=settings.auth_partner_key_cache_seconds,
        ),
        tokens=tokens,
        limiter=RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst),
        partner_limiter=RateLimiter(
            settings.partner_rate_limit_per_minute, settings.partner_rate_limit_burst
        ),
        openapi=MergedOpenApi(upstreams.clients),
        http=http,
    )


def caller_address(settings: GatewaySettings, request: Request) -> str:
    """The anonymous caller's address, as the trusted proxies in front of us report it."""
    return client_address(
        request.headers.get("x-forwarded-for"),
        request.client.host if request.client else None,
        settings.trusted_proxies,
    )


def bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    dev_key = (
        SigningKey.load_or_create(settings.auth_dev_key_dir) if settings.auth_dev_mode else None
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        gateway = build(settings)
        app.state.gateway = gateway
        try:
            yield
        finally:
            await gateway.close()

    app = FastAPI(
        title="Gala gateway",
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        telemetry=native_telemetry(),
    )
    install_problem_handlers(app)
    app.add_middleware(PathGuardMiddleware)  # innermost: its refusals get every header
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_credentials=True,
        allow_methods=ALL_METHODS,
        allow_headers=["Authorization", "Content-Type", "X-Request-ID", "Idempotency-Key"],
        expose_headers=["X-Request-ID", "Retry-After"],
        max_age=600,
    )
    app.add_middleware(HttpMetricsMiddleware, service="gateway")
    app.add_middleware(RequestMiddleware)

    async def identity_keys() -> bool:
        gateway: Gateway = app.state.gateway
        await gateway.jwks.ensure_fresh()
        return True

    app.state.readiness_checks = {"identity-keys": identity_keys}
    app.include_router(health_router())
    app.include_router(metrics_router())

    def gateway_of(request: Request | WebSocket) -> Gateway:
        gateway: Gateway = request.app.state.gateway
        return gateway

    @app.get(f"{API_PREFIX}/openapi.json", include_in_schema=False)
    async def openapi(request: Request) -> JSONResponse:
        return JSONResponse(await gateway_of(request).openapi.document())

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=f"{API_PREFIX}/openapi.json", title="Gala API")

    if dev_key is not None:

        @app.get("/dev/jwks.json", include_in_schema=False)
        async def dev_jwks() -> dict[str, Any]:
            return jwks(dev_key)

    @app.websocket(f"{API_PREFIX}/projects/{{project_id}}/chat")
    async def chat_socket(websocket: WebSocket, project_id: str) -> None:
        gateway = gateway_of(websocket)
        try:
            path = forwardable_path(websocket.scope.get("raw_path") or b"")
        except GalaError as exc:
            await refuse(websocket, CLOSE_BAD_REQUEST, exc.detail)
            return
        try:
            principal = await gateway.principal(socket_token(websocket))
        except GalaError as exc:
            code = {401: CLOSE_UNAUTHORIZED, 403: CLOSE_FORBIDDEN}.get(exc.status, CLOSE_TRY_AGAIN)
            await refuse(websocket, code, exc.detail)
            return
        await proxy_socket(
            websocket,
            gateway.settings.upstream("chat"),
            path=path,
            identity=gateway.tokens.issue(principal),
            request_id=request_id.get(),
            max_frame_bytes=gateway.settings.ws_max_frame_bytes,
        )

    @app.api_route(f"{API_PREFIX}/{{path:path}}", methods=ALL_METHODS, include_in_schema=False)
    async def proxy(request: Request, path: str) -> Response:
        gateway = gateway_of(request)
        target = checked_target(request.scope)
        route = route_for(request.method, request.scope["path"])
        if route is None:
            raise NotFound(f"No service serves {request.scope['path']}.")
        identity = None
        if route.public:
            gateway.limiter.check(f"addr:{caller_address(gateway.settings, request)}")
        else:
            principal = await gateway.principal(bearer_token(request), partner_route=route.partner)
            identity = gateway.tokens.issue_reused(principal)
        if route.upload:
            body = await limited_stream(request, gateway.settings.max_upload_bytes)
            return await gateway.upstreams.forward(
                route.service, request, target=target, identity=identity, body=body
            )
        content = await read_body(request, gateway.settings.max_body_bytes)
        return await gateway.upstreams.forward(
            route.service, request, target=target, identity=identity, body=content
        )

    return app
