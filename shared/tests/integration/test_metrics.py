"""Every process serves Prometheus metrics at /metrics: HTTP by route template, event
handling by type and outcome, dead letters, the outbox, and the consumer group's lag."""

from datetime import UTC, datetime

import httpx
from kernel_samples import WidgetKit, settings_for
from prometheus_client.parser import text_string_to_metric_families

from gala.app import ProcessRole, create_app
from gala.events.topics import redrive_topic
from gala.testing import eventually, http_server, unique_name, wait_until_assigned


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [
        (sample.name, dict(sample.labels), sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def value(text: str, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    return sum(v for n, found, v in samples(text) if n == name and labels.items() <= found.items())


async def test_a_service_reports_what_it_does(infra):
    kit = WidgetKit(unique_name(), fail_times=1)
    settings = settings_for(
        infra,
        mongo_database=unique_name("gala_metrics_"),
        consumer_max_attempts=2,
        metrics_interval_seconds=0.2,
    )
    app = create_app(kit.definition(), ProcessRole.ALL, settings)
    async with http_server(app) as url, httpx.AsyncClient(base_url=url) as client:
        runtime = app.state.runtime
        await wait_until_assigned(runtime)
        service = kit.tag
        for widget in ("w-1", "w-2"):  # written with their events, relayed by the outbox
            assert (await client.post(f"/widgets/{widget}")).status_code == 200
        await runtime.publisher.publish(kit.topic, kit.envelope("bad-1"))
        again = kit.envelope("w-3")
        await runtime.publisher.publish(kit.topic, again)

        async def scraped() -> str:
            response = await client.get("/metrics")
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/plain")
            return response.text

        async def handled_everything() -> bool:
            text = await scraped()
            return value(text, "gala_events_handled_total", service=service) >= 4

        await eventually(handled_everything, timeout=30)
        await runtime.publisher.publish(kit.topic, again)  # the same event once more

        async def settled() -> bool:
            text = await scraped()
            return (
                value(text, "gala_events_handled_total", service=service, outcome="duplicate") >= 1
                and value(text, "gala_consumer_lag", group=runtime.consumer.group_id) == 0
            )

        await eventually(settled, timeout=30)
        text = await scraped()
        handled = {"service": service, "event_type": kit.made.TYPE}
        assert value(text, "gala_events_handled_total", **handled, outcome="ok") == 3
        assert value(text, "gala_events_handled_total", **handled, outcome="retried") == 2
        assert value(text, "gala_events_handled_total", **handled, outcome="dead_lettered") == 1
        assert value(text, "gala_events_handled_total", **handled, outcome="duplicate") == 1
        assert value(text, "gala_event_handling_duration_seconds_count", **handled) == 4
        assert value(text, "gala_dead_letters_total", **handled) == 1
        assert value(text, "gala_outbox_published_total", service=service) == 2
        assert value(text, "gala_outbox_publish_failures_total", service=service) == 0
        assert (
            value(text, "gala_outbox_pending_documents", service=service, collection="widgets") == 0
        )
        assert value(text, "gala_outbox_oldest_pending_age_seconds", service=service) == 0
        lag = [
            labels
            for name, labels, _ in samples(text)
            if name == "gala_consumer_lag" and labels["group"] == runtime.consumer.group_id
        ]
        # every topic it reads: its streams and its redrive topic (what `gala ops` hands back)
        assert {labels["topic"] for labels in lag} == {kit.topic, redrive_topic(kit.tag)}
        assert len(lag) == 2 * infra.topic_partitions
        # HTTP by route template and status class, never the id in the path
        posted = {"service": service, "method": "POST", "route": "/widgets/{widget_id}"}
        assert value(text, "gala_http_requests_total", **posted, status_class="2xx") == 2
        assert value(text, "gala_http_request_duration_seconds_count", **posted) == 2
        assert not any("w-1" in str(labels) for _, labels, _ in samples(text))


async def test_a_pending_event_shows_its_age(infra):
    kit = WidgetKit(unique_name())
    settings = settings_for(
        infra, mongo_database=unique_name("gala_metrics_"), metrics_interval_seconds=0.2
    )
    app = create_app(kit.definition(), ProcessRole.ALL, settings)
    async with http_server(app):
        runtime = app.state.runtime
        entry = runtime.outbox.entry(kit.made(widget_id="late", size=1), subject="late",
                                     venue_id="venue-1")  # fmt: skip
        entry["time"] = datetime(2020, 1, 1, tzinfo=UTC)
        # written as a process that died before relaying would have left it
        await runtime.store["widgets"].insert_one(
            {"_id": "late", "_outbox": [entry], "_outboxPending": True,
             "_outboxLease": {"owner": "dead", "until": datetime(2099, 1, 1, tzinfo=UTC)}}
        )  # fmt: skip
        pending, age = await runtime.relay.measure()
        assert pending == {"widgets": 1}
        assert age > 5 * 365 * 24 * 3600
