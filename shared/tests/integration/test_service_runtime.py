"""The service skeleton end to end: HTTP in, event out, handler span in the same trace."""

import asyncio

from cloudevents.core.bindings.kafka import KafkaMessage, from_binary
from cloudevents.core.formats.json import JSONFormat
from kernel_samples import WidgetKit, settings_for

from gala.app import ProcessRole, create_app
from gala.events import consumer_group
from gala.identity import Principal, Role
from gala.testing import (
    committed_offsets,
    eventually,
    identity_headers,
    read_topic,
    serving,
    unique_name,
    wait_until_assigned,
)

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"


def app_for(kit: WidgetKit, infra, role=ProcessRole.ALL, **overrides):
    settings = settings_for(infra, mongo_database=unique_name("gala_runtime_"), **overrides)
    return create_app(kit.definition(), role, settings)


async def test_a_kernel_event_is_read_by_the_official_cloudevents_sdk(infra):
    kit = WidgetKit(unique_name())
    async with serving(app_for(kit, infra, ProcessRole.API)) as client:
        response = await client.post(
            "/widgets/w-7", headers={"traceparent": TRACEPARENT, "x-correlation-id": "corr-1"}
        )
        assert response.status_code == 200
        (record,) = await read_topic(infra.kafka_bootstrap, kit.topic, count=1)

    message = KafkaMessage(
        headers={name: value for name, value in record.headers}, key=record.key, value=record.value
    )
    event = from_binary(message, JSONFormat())
    assert event.get_specversion() == "1.0"
    assert event.get_type() == kit.made.TYPE
    assert event.get_source() == f"/gala/{kit.tag}"
    assert event.get_subject() == "w-7"
    assert event.get_id()
    assert event.get_time() is not None
    assert event.get_datacontenttype() == "application/json"
    assert event.get_extension("venueid") == "venue-1"
    assert event.get_extension("correlationid") == "corr-1"
    assert event.get_extension("traceparent").split("-")[1] == TRACE_ID
    assert event.get_data() == {"widgetId": "w-7", "size": 1}


async def test_the_trace_runs_from_the_http_request_through_the_event_to_the_handler(infra):
    kit = WidgetKit(unique_name())
    app = app_for(kit, infra)
    async with serving(app) as client:
        await wait_until_assigned(app.state.runtime)
        response = await client.post("/widgets/w-1", headers={"traceparent": TRACEPARENT})
        assert response.status_code == 200
        assert response.headers["x-request-id"]
        event, context, (trace_id, _span) = await asyncio.wait_for(kit.seen.get(), 20)
        assert event.widget_id == "w-1"
        assert trace_id == TRACE_ID  # the handler's span is a child of the request's trace
        assert context.envelope.traceparent.split("-")[1] == TRACE_ID
        assert context.envelope.correlationid == response.headers["x-request-id"]


async def test_health_reports_live_and_ready(infra):
    kit = WidgetKit(unique_name())
    async with serving(app_for(kit, infra, ProcessRole.API)) as client:
        assert (await client.get("/health/live")).json() == {"status": "ok"}
        ready = await client.get("/health/ready")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"store": "ok", "kafka": "ok"}


async def test_a_worker_is_ready_once_its_group_gave_it_its_partitions(infra):
    """Two workers of one group on one partition: each is ready once the group assigned
    it its share, the idle one (nothing to read) included; until then, 503."""
    kit = WidgetKit(unique_name())
    database = unique_name("gala_runtime_")
    first = create_app(
        kit.definition(), ProcessRole.WORKER,
        settings_for(infra, mongo_database=database, topic_partitions=1),
    )  # fmt: skip
    runtime = first.state.runtime
    assert await runtime.consumer.ready() is False  # not started: not a member yet
    async with serving(first) as one:
        await eventually(lambda: _ready(one), timeout=60)
        assert (await one.get("/health/ready")).json()["checks"]["consumer-group"] == "ok"
        second = create_app(
            kit.definition(), ProcessRole.WORKER,
            settings_for(infra, mongo_database=database, topic_partitions=1),
        )  # fmt: skip
        async with serving(second) as two:
            await eventually(lambda: _ready(two), timeout=60)
            await eventually(lambda: _ready(one), timeout=60)
            assignments = [
                runtime.consumer.assignment(),
                second.state.runtime.consumer.assignment(),
            ]
            # the two partitions (the stream's and the redrive topic's) are shared out
            assert sum(len(a) for a in assignments) == 2


async def _ready(client) -> bool:
    return (await client.get("/health/ready")).status_code == 200


async def test_readiness_fails_with_a_problem_when_the_store_is_gone(infra):
    kit = WidgetKit(unique_name())
    app = app_for(kit, infra, ProcessRole.API)
    async with serving(app) as client:
        await app.state.runtime.store.close()  # as if the store went away
        ready = await client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.headers["content-type"] == "application/problem+json"
        assert ready.json()["checks"]["store"] == "failing"


async def test_api_requests_without_the_gateway_identity_get_401(infra):
    kit = WidgetKit(unique_name())

    async def whoami_app():
        from fastapi import APIRouter

        from gala.identity import CurrentPrincipal

        router = APIRouter()

        @router.get("/whoami")
        async def whoami(principal: CurrentPrincipal) -> dict[str, str]:
            return {"venue": principal.venue_id, "role": principal.role.value}

        definition = kit.definition()
        definition = type(definition)(**{**definition.__dict__, "routers": [router]})
        settings = settings_for(infra, mongo_database=unique_name("gala_runtime_"))
        return create_app(definition, ProcessRole.API, settings)

    app = await whoami_app()
    async with serving(app) as client:
        refused = await client.get("/whoami")
        assert refused.status_code == 401
        assert refused.json()["type"] == "urn:gala:problem:unauthorized"
        forged = await client.get("/whoami", headers={"X-Gala-Identity": "not.a.token"})
        assert forged.status_code == 401
        principal = Principal(user_id="u", venue_id="venue-9", role=Role.ADMIN)
        allowed = await client.get(
            "/whoami", headers=identity_headers(app.state.runtime, principal)
        )
        assert allowed.json() == {"venue": "venue-9", "role": "ADMIN"}


async def test_unknown_routes_and_bad_input_answer_problem_json(infra):
    kit = WidgetKit(unique_name())
    async with serving(app_for(kit, infra, ProcessRole.API)) as client:
        missing = await client.get("/nowhere")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        assert missing.json()["status"] == 404


async def test_the_worker_role_serves_health_but_not_the_api(infra):
    kit = WidgetKit(unique_name())
    async with serving(app_for(kit, infra, ProcessRole.WORKER)) as client:
        assert (await client.get("/health/live")).status_code == 200
        assert (await client.post("/widgets/w-1")).status_code == 404


async def test_a_handler_cancelled_at_shutdown_commits_nothing(infra):
    kit = WidgetKit(unique_name())
    database = unique_name("gala_runtime_")
    blocked = asyncio.Event()

    # a handler that never finishes: shutdown has to cancel it
    @kit.subscriptions.on(kit.made, name="hang")
    async def hang(event, ctx) -> None:
        blocked.set()
        await asyncio.Event().wait()

    settings = settings_for(infra, mongo_database=database, shutdown_grace_seconds=0.5)
    app = create_app(kit.definition(), ProcessRole.ALL, settings)
    async with serving(app) as client:
        await wait_until_assigned(app.state.runtime)
        await client.post("/widgets/w-1")
        await asyncio.wait_for(blocked.wait(), 20)
    # stopped while the handler hung: its offset was not committed...
    assert await committed_offsets(infra.kafka_bootstrap, consumer_group(kit.tag)) == 0

    # ...so the next process of the service runs that handler again (and only that one:
    # "count" had finished and is recorded as processed)
    restarted = WidgetKit(kit.tag)
    finished: asyncio.Queue = asyncio.Queue()

    @restarted.subscriptions.on(restarted.made, name="hang")
    async def no_longer_hangs(event, ctx) -> None:
        await finished.put(event)

    settings = settings_for(infra, mongo_database=database)
    app = create_app(restarted.definition(), ProcessRole.WORKER, settings)
    async with serving(app):
        event = await asyncio.wait_for(finished.get(), 30)
        assert event.widget_id == "w-1"
        assert restarted.seen.empty()
