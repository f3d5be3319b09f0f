"""The service skeleton: a service is its domain plus a :class:`ServiceDefinition`.

``run(definition)`` is a service's whole ``__main__``: it reads settings, configures
logging and tracing, and serves HTTP with uvicorn. Its lifespan starts the runtime:
the store (and its indexes), the topics, the Kafka broker, the outbox relay, and, in
the worker role, the event consumer and the service's background loops.

Roles: ``api`` serves the HTTP API (and relays the outbox its writes fill), ``worker``
consumes events and runs background loops (HTTP serves only health), ``all`` does both.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any

import uvicorn
from fastapi import APIRouter, Depends, FastAPI, Request

from gala import metrics
from gala.api import openapi_with_problems
from gala.errors import install_problem_handlers
from gala.events.bus import EnvelopePublisher, make_broker
from gala.events.consumer import PROCESSED_INDEX, EventConsumer, RetryPolicy, Subscriptions
from gala.events.model import Event
from gala.events.outbox import Outbox, OutboxRelay
from gala.events.topics import LagReader, dead_letter_topic, ensure_topics, redrive_topic
from gala.health import Check, health_router
from gala.identity import InternalTokens
from gala.logging import configure_logging
from gala.metrics import HttpMetricsMiddleware, metrics_router
from gala.middleware import RequestMiddleware
from gala.settings import Settings, load_settings, settings_as
from gala.store import Index, Store
from gala.tracing import configure_tracing, native_telemetry

log = logging.getLogger(__name__)


class ProcessRole(StrEnum):
    API = "api"
    WORKER = "worker"
    ALL = "all"

    @property
    def serves_api(self) -> bool:
        return self in (ProcessRole.API, ProcessRole.ALL)

    @property
    def consumes(self) -> bool:
        return self in (ProcessRole.WORKER, ProcessRole.ALL)


BackgroundLoop = Callable[["Runtime"], Coroutine[Any, Any, None]]


async def keep_polling(
    run_once: Callable[[], Awaitable[bool]], idle_seconds: float, what: str
) -> None:
    """A background loop's body: ``run_once`` again at once while it finds more work
    (answers ``True``), after ``idle_seconds`` when it found none; a failure is logged
    and tried again after the pause (never ends the loop)."""
    while True:
        try:
            busy = await run_once()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed; trying again shortly", what)
            busy = False
        if not busy:
            await asyncio.sleep(idle_seconds)


@dataclass(frozen=True)
class ServiceDefinition:
    """Everything the kernel needs to know to run one service."""

    name: str
    port: int
    description: str = ""
    routers: Sequence[APIRouter] = ()
    subscriptions: Subscriptions = field(default_factory=Subscriptions)
    publishes: Sequence[type[Event]] = ()
    indexes: Sequence[Index] = ()
    outbox_collections: Sequence[str] = ()
    background: Sequence[BackgroundLoop] = ()
    """Loops of the worker role (time-driven work)."""
    api_background: Sequence[BackgroundLoop] = ()
    """Loops of the API role (e.g. what feeds the sockets this process serves)."""
    settings_type: type[Settings] = Settings

    def topics(self) -> list[str]:
        """Every topic this service writes or reads, created explicitly at start-up."""
        published = {event.TOPIC for event in self.publishes}
        own = {dead_letter_topic(self.name)}
        if self.subscriptions:
            own.add(redrive_topic(self.name))  # what `gala ops` hands back to its consumer
        return sorted(published | set(self.subscriptions.topics) | own)


class Runtime:
    """The live parts of one service process."""

    def __init__(
        self, definition: ServiceDefinition, settings: Settings, role: ProcessRole
    ) -> None:
        self.definition = definition
        self.settings = settings_as(settings, definition.settings_type)
        """The service's own settings class (e.g. ContactsSettings), whatever was given."""
        self.role = role
        self.store = Store(settings.mongo_url, settings.database_name(definition.name))
        self.broker = make_broker(
            settings.kafka_bootstrap, definition.name, grace_seconds=settings.shutdown_grace_seconds
        )
        self.publisher = EnvelopePublisher(self.broker)
        self.relay = OutboxRelay(
            self.store,
            self.publisher,
            definition.outbox_collections,
            service=definition.name,
            poll_interval=settings.outbox_poll_interval_seconds,
            lease_seconds=settings.outbox_lease_seconds,
            concurrency=settings.outbox_concurrency,
        )
        self.outbox = Outbox(definition.name, self.relay)
        self.tokens = InternalTokens(
            settings.internal_token_secret.get_secret_value(), settings.internal_token_ttl_seconds
        )
        self.consumer: EventConsumer | None = None
        if role.consumes and definition.subscriptions:
            self.consumer = EventConsumer(
                definition.name,
                definition.subscriptions,
                store=self.store,
                outbox=self.outbox,
                publisher=self.publisher,
                settings=self.settings,
                group_id=settings.consumer_group,
                start_from=settings.consumer_start_from,
                retry=RetryPolicy(
                    settings.consumer_max_attempts,
                    settings.consumer_backoff_initial_seconds,
                    settings.consumer_backoff_max_seconds,
                ),
            )
        self._background: list[asyncio.Task[None]] = []

    @property
    def readiness_checks(self) -> dict[str, Check]:
        async def store() -> bool:
            await self.store.ping()
            return True

        async def kafka() -> bool:
            return await self.broker.ping(timeout=1.5)

        checks: dict[str, Check] = {"store": store, "kafka": kafka}
        consumer = self.consumer
        if consumer is not None:

            async def consumer_group() -> bool:
                """A worker is ready once its group gave it its partitions (its topics and
                indexes were made before the consumer started)."""
                return await consumer.ready()

            checks["consumer-group"] = consumer_group
        return checks

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        settings = self.settings
        await self.store.ensure_indexes(
            [*self.definition.indexes, *self.relay.indexes, PROCESSED_INDEX]
        )
        await ensure_topics(
            settings.kafka_bootstrap,
            self.definition.topics(),
            partitions=settings.topic_partitions,
            replication_factor=settings.topic_replication_factor,
        )
        if self.consumer is not None:
            self.consumer.attach(self.broker)
        await self.broker.start()
        self.relay.start()
        if self.consumer is not None:
            prune = self.consumer.prune_processed(
                timedelta(days=settings.processed_event_retention_days),
                settings.processed_event_prune_interval_seconds,
            )
            self._background.append(asyncio.create_task(prune, name="gala-prune-processed"))
        loops = [
            *(self.definition.background if self.role.consumes else ()),
            *(self.definition.api_background if self.role.serves_api else ()),
        ]
        for loop in loops:
            self._background.append(asyncio.create_task(loop(self), name=loop.__qualname__))
        self._background.append(asyncio.create_task(self._measure(), name="gala-metrics"))
        log.info(
            "service started",
            extra={"role": self.role.value, "topics": self.definition.topics()},
        )

    async def _measure(self) -> None:
        """Keep the gauges that need a look at the store or the broker up to date: the
        outbox's pending documents and oldest age, and (consuming roles) the group's lag."""
        lag = (
            LagReader(
                self.settings.kafka_bootstrap,
                self.consumer.group_id,
                [*self.consumer.subscriptions.topics, redrive_topic(self.definition.name)],
            )
            if self.consumer is not None
            else None
        )

        async def once() -> bool:
            await self.relay.measure()
            if lag is not None:
                metrics.set_lag(lag.group, await lag.read())
            return False

        try:
            await keep_polling(once, self.settings.metrics_interval_seconds, "measuring")
        finally:
            if lag is not None:
                await lag.close()

    async def stop(self) -> None:
        """Stop in reverse order; a part that does not stop in time is left behind, logged,
        so that shutdown always ends (an orchestrator would kill the process anyway)."""
        for task in self._background:
            task.cancel()
        limit = self.settings.shutdown_grace_seconds + 5
        for task in self._background:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, limit)
        self._background.clear()
        for name, step in (
            ("outbox relay", self.relay.stop),
            ("Kafka broker", self.broker.stop),
            ("store", self.store.close),
        ):
            try:
                await asyncio.wait_for(step(), limit)
            except TimeoutError:
                log.error("stopping timed out", extra={"part": name, "seconds": limit})


def create_app(
    definition: ServiceDefinition,
    role: ProcessRole = ProcessRole.ALL,
    settings: Settings | None = None,
) -> FastAPI:
    settings = settings or definition.settings_type()
    runtime = Runtime(definition, settings, role)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(
        title=f"Gala {definition.name}",
        description=definition.description,
        version="1",
        lifespan=lifespan,
        telemetry=native_telemetry(),
    )
    app.openapi = openapi_with_problems(app)  # type: ignore[method-assign]
    app.state.runtime = runtime
    app.state.internal_tokens = runtime.tokens
    app.state.readiness_checks = runtime.readiness_checks
    install_problem_handlers(app)
    app.add_middleware(HttpMetricsMiddleware, service=definition.name)
    app.add_middleware(RequestMiddleware)
    app.include_router(health_router())
    app.include_router(metrics_router())
    if role.serves_api:
        for router in definition.routers:
            app.include_router(router)
    return app


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


# The dependencies are coroutines: FastAPI runs a plain function dependency in a worker
# thread (a hop there and back on every request); these only read an attribute.
async def _runtime(request: Request) -> Runtime:
    return get_runtime(request)


async def get_store(request: Request) -> Store:
    return get_runtime(request).store


async def get_outbox(request: Request) -> Outbox:
    return get_runtime(request).outbox


RuntimeDep = Annotated[Runtime, Depends(_runtime)]
StoreDep = Annotated[Store, Depends(get_store)]
OutboxDep = Annotated[Outbox, Depends(get_outbox)]


def parse_args(definition: ServiceDefinition, argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=f"python -m {definition.name}", description=f"Run the Gala {definition.name} service."
    )
    parser.add_argument(
        "--role",
        choices=[role.value for role in ProcessRole],
        default=ProcessRole.ALL.value,
        help="api: HTTP API; worker: event consumers and background loops; all: both",
    )
    parser.add_argument("--host", default=None, help="bind address (default: GALA_HOST)")
    parser.add_argument("--port", type=int, default=None, help=f"default {definition.port}")
    return parser.parse_args(argv)


def run(definition: ServiceDefinition, argv: Sequence[str] | None = None) -> None:
    """A service's ``__main__``: ``python -m <service> --role api|worker|all``."""
    args = parse_args(definition, argv)
    settings = load_settings(definition.settings_type)
    configure_logging(definition.name, settings.log_level)
    configure_tracing(definition.name)
    app = create_app(definition, ProcessRole(args.role), settings)
    serve(
        server_config(
            app,
            host=args.host or settings.host,
            port=args.port or settings.port_for(definition.name, definition.port),
            lifespan="on",
            # heartbeats: a socket whose peer stops answering pings is closed
            ws_ping_interval=20.0,
            ws_ping_timeout=20.0,
        )
    )


LOOP = "uvloop"
HTTP = "httptools"


def server_config(app: Any, *, host: str, port: int, **options: Any) -> uvicorn.Config:
    """How every Gala process serves HTTP (services and the gateway): uvloop's event loop
    and httptools' HTTP parser (``uvicorn[standard]``), no access log (the request
    middleware logs), a graceful shutdown of at most 10 s."""
    settings: dict[str, Any] = {
        "log_config": None,
        "access_log": False,
        "timeout_graceful_shutdown": 10,
        **options,
    }
    return uvicorn.Config(app, host=host, port=port, loop=LOOP, http=HTTP, **settings)


def serve(config: uvicorn.Config) -> None:
    """Serve ``config`` until a signal stops it, on the event loop it names (uvloop: a
    bare ``asyncio.run`` would run uvicorn on asyncio's own loop, whatever it says)."""
    config.load()  # resolves the protocol classes (and fails here, not after binding)
    server = uvicorn.Server(config)

    async def serving() -> None:
        log.info(
            "serving",
            extra={
                "loop": type(asyncio.get_running_loop()).__module__.split(".")[0],
                "http_protocol": getattr(config.http_protocol_class, "__name__", "?"),
                "port": config.port,
            },
        )
        await server.serve()

    with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
        runner.run(serving())
