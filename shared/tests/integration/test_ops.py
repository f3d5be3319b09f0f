"""`gala ops` on the real broker and store: dead letters listed, shown and redriven to
the failing group only, replays, lag and outbox figures, and the CLI itself."""

import asyncio
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient
from kernel_samples import WidgetKit, settings_for

from gala import ops
from gala.app import ProcessRole, Runtime, ServiceDefinition
from gala.events import EventContext, Outbox, Subscriptions, dead_letter_topic
from gala.events.topics import redrive_topic
from gala.store import Store
from gala.testing import GALA_CLI, eventually, gala_cli, unique_name, wait_until_assigned

KIT = Path(__file__).parent / "kit"


async def worker(definition: ServiceDefinition, infra, **overrides) -> Runtime:
    overrides.setdefault("mongo_database", unique_name("gala_ops_"))
    runtime = Runtime(definition, settings_for(infra, **overrides), ProcessRole.WORKER)
    await runtime.start()
    await wait_until_assigned(runtime)
    return runtime


def recorder(kit: WidgetKit) -> Subscriptions:
    """Subscriptions to the kit's widgets that only note each handling (never fail)."""
    subscriptions = Subscriptions()

    @subscriptions.on(kit.made, name="note")
    async def note(event, ctx: EventContext) -> None:
        await ctx.store["seen"].insert_one({"widget": event.widget_id})

    return subscriptions


async def count_of(runtime: Runtime, widget_id: str) -> int:
    doc = await runtime.store["counts"].find_one({"_id": widget_id})
    return doc["n"] if doc else 0


async def seen(runtime: Runtime, widget_id: str) -> int:
    return await runtime.store["seen"].count_documents({"widget": widget_id})


async def settled(runtime: Runtime, topic: str, *, records: int) -> None:
    """Wait until the runtime's group has committed ``records`` records of ``topic``
    (``gala ops lag`` says so): whatever they cause has happened."""
    target = ops.Target.of(runtime.definition, runtime.settings)

    async def done() -> bool:
        rows = [row for row in await ops.lag(runtime.settings, [target]) if row.topic == topic]
        ends = sum(row.end for row in rows)
        return ends == records and all(_caught_up(row.committed, row.end) for row in rows)

    await eventually(done, timeout=60)


async def test_a_dead_letter_is_listed_shown_and_redriven_once_to_its_own_group_only(infra):
    kit = WidgetKit(unique_name(), fail_times=3)  # its first 3 attempts fail, then "fixed"
    failing = await worker(kit.definition(), infra, topic_partitions=1, consumer_max_attempts=3)
    # the same service in another consumer group, and another service on the same topic
    same = ServiceDefinition(name=kit.tag, port=0, subscriptions=recorder(kit))
    second = await worker(same, infra, topic_partitions=1, consumer_group=f"gala.{kit.tag}.b")
    another = ServiceDefinition(name=f"{kit.tag}x", port=0, subscriptions=recorder(kit))
    other = await worker(another, infra, topic_partitions=1)
    settings = failing.settings
    target = ops.Target.of(failing.definition, settings)
    try:
        event = kit.envelope("w-1")
        await failing.publisher.publish(kit.topic, event)
        letters = await eventually(lambda: ops.dead_letters(settings, target), timeout=60)

        (letter,) = letters
        listed = letter.summary()
        assert listed["eventId"] == event.id
        assert listed["eventType"] == kit.made.TYPE
        assert listed["origin"] == f"{kit.topic}:0:0"
        assert listed["group"] == f"gala.{kit.tag}"
        assert (listed["handler"], listed["attempts"]) == ("count", 3)
        assert "widget counter is flaky" in listed["error"]
        assert listed["redrivenAt"] is None
        shown = await ops.dead_letter(settings, target, event_id=event.id)
        assert shown.detail()["payload"] == {"widgetId": "w-1", "size": 1}
        assert "RuntimeError" in shown.detail()["trace"]
        by_offset = await ops.dead_letter(settings, target, offset=letter.offset)
        assert by_offset.event_id == event.id
        assert await count_of(failing, "w-1") == 0

        (done,) = await ops.redrive(settings, target, offset=letter.offset)
        assert done.outcome == "redriven"
        await eventually(lambda: _equals(count_of(failing, "w-1"), 1), timeout=60)
        await settled(failing, redrive_topic(kit.tag), records=1)
        assert await seen(failing, "w-1") == 4  # 3 failed attempts, then the redrive

        # the other group of the same service read the redrive record and left it alone
        await settled(second, redrive_topic(kit.tag), records=1)
        await settled(other, kit.topic, records=1)
        assert await seen(second, "w-1") == 1
        assert await seen(other, "w-1") == 1
        assert redrive_topic(kit.tag) not in await _topics_of_group(infra, f"gala.{kit.tag}x")

        # a second redrive changes nothing: it is remembered, and nothing is sent
        (again,) = await ops.redrive(settings, target, everything=True)
        assert again.outcome == "already redriven"
        (again,) = await ops.redrive(settings, target, event_id=event.id)
        assert again.outcome == "already redriven"
        (listed_after,) = await ops.dead_letters(settings, target)
        assert listed_after.redriven_at is not None

        # and should the record be lost, the consumer still has the effect only once
        await failing.store[ops.REDRIVES].delete_many({})
        (resent,) = await ops.redrive(settings, target, everything=True)
        assert resent.outcome == "redriven"
        await settled(failing, redrive_topic(kit.tag), records=2)
        assert await count_of(failing, "w-1") == 1
        assert await seen(failing, "w-1") == 4
        assert len(await ops.dead_letters(settings, target)) == 1  # no new dead letter
    finally:
        for runtime in (failing, second, other):
            await runtime.stop()


async def test_a_redriven_message_that_fails_again_is_a_new_dead_letter_of_the_original(infra):
    kit = WidgetKit(unique_name())  # "bad" widgets always fail
    runtime = await worker(kit.definition(), infra, topic_partitions=1, consumer_max_attempts=2)
    settings = runtime.settings
    target = ops.Target.of(runtime.definition, settings)
    try:
        await runtime.publisher.publish(kit.topic, kit.envelope("bad-1"))
        (first,) = await eventually(lambda: ops.dead_letters(settings, target), timeout=60)
        await ops.redrive(settings, target, everything=True)

        async def two() -> list[ops.DeadLetter]:
            found = await ops.dead_letters(settings, target)
            return found if len(found) == 2 else []

        _, second = await eventually(two, timeout=60)
        assert second.event_id == first.event_id
        assert second.origin == first.origin == (kit.topic, 0, 0)  # not the redrive topic
        assert second.header("gala_redrive_group") == ""
        # --all redrives the new one only
        results = await ops.redrive(settings, target, everything=True)
        assert [r.outcome for r in results] == ["already redriven", "redriven"]
    finally:
        await runtime.stop()


async def test_a_replay_runs_the_handlers_again_for_exactly_the_events_since_a_time(infra):
    kit = WidgetKit(unique_name())
    runtime = await worker(kit.definition(), infra, topic_partitions=2)
    same = ServiceDefinition(name=kit.tag, port=0, subscriptions=recorder(kit))
    second = await worker(same, infra, topic_partitions=2, consumer_group=f"gala.{kit.tag}.b")
    settings = runtime.settings
    target = ops.Target.of(runtime.definition, settings)
    try:
        for widget in ("w-1", "w-2"):
            await runtime.publisher.publish(kit.topic, kit.envelope(widget))
        await settled(runtime, kit.topic, records=2)
        await asyncio.sleep(0.05)
        since = datetime.now(UTC)
        await asyncio.sleep(0.05)
        for widget in ("w-3", "w-4", "w-5"):
            await runtime.publisher.publish(kit.topic, kit.envelope(widget))
        await settled(runtime, kit.topic, records=5)
        assert [await count_of(runtime, w) for w in ("w-1", "w-3")] == [1, 1]

        done = await ops.replay(settings, target, since)
        assert done.copied == 3
        assert sum(p.end_offset - p.first_offset for p in done.partitions) == 3
        await settled(runtime, redrive_topic(kit.tag), records=3)
        counts = [await count_of(runtime, w) for w in ("w-1", "w-2", "w-3", "w-4", "w-5")]
        assert counts == [1, 1, 2, 2, 2]  # the handler ran again, for those 3 only
        # another group of the service was not replayed to
        await settled(second, redrive_topic(kit.tag), records=3)
        assert [await seen(second, w) for w in ("w-3", "w-4", "w-5")] == [1, 1, 1]
    finally:
        await runtime.stop()
        await second.stop()


async def test_lag_and_outbox_figures_match_what_was_published_and_is_pending(infra):
    kit = WidgetKit(unique_name())
    settings = settings_for(infra, mongo_database=unique_name("gala_ops_"), topic_partitions=1)
    api = Runtime(kit.definition(), settings, ProcessRole.API)
    await api.start()
    try:
        for widget in ("w-1", "w-2", "w-3"):
            await api.publisher.publish(kit.topic, kit.envelope(widget))
    finally:
        await api.stop()
    target = ops.Target.of(kit.definition(), settings)

    rows = {row.topic: row for row in await ops.lag(settings, [target])}
    # every topic it reads: made at start-up, by any of its processes
    assert set(rows) == {kit.topic, redrive_topic(kit.tag)}
    assert (rows[redrive_topic(kit.tag)].end, rows[redrive_topic(kit.tag)].lag) == (0, 0)
    assert (rows[kit.topic].committed, rows[kit.topic].end, rows[kit.topic].lag) == (None, 3, 3)
    assert rows[kit.topic].group == f"gala.{kit.tag}"

    runtime = await worker(kit.definition(), infra, mongo_database=settings.mongo_database)
    try:
        await eventually(lambda: _equals(count_of(runtime, "w-3"), 1), timeout=60)
        await settled(runtime, kit.topic, records=3)
        rows = {row.topic: row for row in await ops.lag(settings, [target])}
        assert set(rows) == {kit.topic, redrive_topic(kit.tag)}
        row = rows[kit.topic]
        assert (row.committed, row.end, row.lag) == (3, 3, 0)
    finally:
        await runtime.stop()

    # two documents whose events are not relayed (no relay runs), the oldest 30 s old
    outbox = Outbox(kit.tag)
    store = Store(settings.mongo_url, target.database)
    try:
        for widget, age in (("w-8", 30), ("w-9", 5)):
            made = kit.made(widget_id=widget, size=1)
            entry = outbox.entry(made, subject=widget, venue_id="v")
            entry["time"] = datetime.now(UTC) - timedelta(seconds=age)
            await outbox.insert(store["widgets"], {"_id": widget}, [entry])
        (state,) = await ops.outbox(settings, [target])
        assert state.pending == {"widgets": 2}
        assert 30 <= state.oldest_pending_age_seconds < 60
    finally:
        await store.client.drop_database(target.database)
        await store.close()


async def test_the_cli_lists_shows_and_redrives_dead_letters_and_replays(infra, tmp_path):
    kit = WidgetKit(unique_name(), fail_times=3)
    runtime = await worker(kit.definition(), infra, topic_partitions=1, consumer_max_attempts=3)
    # the CLI finds a service as <name>.bootstrap.service: the kit, as a package
    package = tmp_path / kit.tag
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "bootstrap.py").write_text(
        f"from kernel_samples import WidgetKit\nservice = WidgetKit({kit.tag!r}).definition()\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(KIT)]),
        "GALA_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
        "GALA_MONGO_URL": infra.mongo_url,
        "GALA_MONGO_DATABASE": runtime.settings.mongo_database,
        "GALA_DEV_MODE": "true",
    }

    async def cli(*args: str):
        return json.loads(await gala_cli(env, "ops", *args, "--service", kit.tag, "--json"))

    try:
        event = kit.envelope("w-1")
        await runtime.publisher.publish(kit.topic, event)

        async def listed() -> list:
            return await cli("dlq", "list")

        (letter,) = await eventually(listed, timeout=60)
        assert (letter["eventId"], letter["redrivenAt"]) == (event.id, None)
        shown = await cli("dlq", "show", "--offset", str(letter["offset"]))
        assert shown["payload"] == {"widgetId": "w-1", "size": 1}
        assert shown["headers"]["gala_dlq_topic"] == kit.topic

        (done,) = await cli("dlq", "redrive", "--all")
        assert done["outcome"] == "redriven"
        await eventually(lambda: _equals(count_of(runtime, "w-1"), 1), timeout=60)
        (again,) = await cli("dlq", "redrive", "--all")
        assert again["outcome"] == "already redriven"

        replayed = await cli("replay", "--since", "10m")
        assert replayed["copied"] == 1
        await eventually(lambda: _equals(count_of(runtime, "w-1"), 2), timeout=60)

        lag = await eventually(lambda: _lag_settled(cli), timeout=60)
        assert {row["topic"] for row in lag} == {kit.topic, redrive_topic(kit.tag)}
        (state,) = await cli("outbox")
        assert (state["service"], state["pendingDocuments"]) == (kit.tag, 0)
        assert await count_of(runtime, "w-1") == 2
        assert dead_letter_topic(kit.tag) not in {row["topic"] for row in lag}
    finally:
        await runtime.stop()


async def test_the_cli_says_what_is_wrong_in_one_line(infra):
    env = {**os.environ, "GALA_DEV_MODE": "true"}
    cli = await asyncio.create_subprocess_exec(
        str(GALA_CLI), "ops", "dlq", "show", "--service", "no_such_service", "--offset", "0",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(cli.communicate(), 30)
    assert cli.returncode == 1
    assert err.decode().startswith("gala: no service 'no_such_service' is installed")


async def _lag_settled(cli) -> list:
    rows = await cli("lag")
    return rows if rows and all(_caught_up(r["committed"], r["end"]) for r in rows) else []


def _caught_up(committed: int | None, end: int) -> bool:
    return (committed or 0) == end


async def _topics_of_group(infra, group: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap)
    await admin.start()
    try:
        return {tp.topic for tp in await admin.list_consumer_group_offsets(group)}
    finally:
        await admin.close()


async def _equals(value, expected) -> bool:
    return await value == expected
