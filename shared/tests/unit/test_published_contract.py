"""The published event contract on the real registry: the committed files are exactly
what the generator makes, every event type is described and has an example valid
against its schema, the generator refuses incompatible changes, and the AsyncAPI
document says what the code runs on (checked also by the AsyncAPI project's parser)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from gala.contracts import publish
from gala.contracts.asyncapi import key_field, subject_field
from gala.contracts.published import (
    ASYNCAPI_FILE,
    PUBLISHED_DIR,
    SCHEMAS_DIR,
    asyncapi_document,
    schema_of,
)
from gala.contracts.schemas import example, json_schema, published_events, summary
from gala.events.topics import consumer_group
from gala.settings import Settings

REPO = Path(__file__).resolve().parents[3]
ASYNCAPI_TOOLS = REPO / "tools" / "asyncapi"


@pytest.fixture(scope="module")
def generated() -> dict[Path, str]:
    return publish.generate()


def test_the_committed_contract_is_exactly_what_the_generator_makes(generated):
    stale = publish.drift(generated)
    assert stale == [], "the published contract is stale: run `make contracts`\n" + "\n".join(stale)
    assert publish.main(["--check"]) == 0


def test_every_published_event_type_has_a_committed_schema():
    committed = {path.stem for path in SCHEMAS_DIR.glob("*.json")}
    assert committed == {cls.TYPE for cls in published_events()}
    assert len(committed) >= 40


@pytest.mark.parametrize("cls", published_events(), ids=lambda c: c.TYPE)
def test_every_event_class_has_a_one_line_description(cls):
    own = cls.__dict__.get("__doc__")
    assert isinstance(own, str) and own.strip(), f"{cls.__name__} has no docstring of its own"
    first_line = own.strip().splitlines()[0].strip()
    assert summary(cls) == first_line, (
        f"{cls.__name__}: the docstring's first line must be the whole description "
        "(a blank line before any detail)"
    )
    assert 10 <= len(first_line) <= 100, f"{cls.__name__}: {first_line!r}"


@pytest.mark.parametrize("cls", published_events(), ids=lambda c: c.TYPE)
def test_every_example_validates_against_its_published_schema(cls):
    schema = schema_of(cls.TYPE)
    jsonschema.Draft202012Validator.check_schema(schema)
    (committed_example,) = schema["examples"]
    assert committed_example == example(cls)
    jsonschema.Draft202012Validator(schema).validate(committed_example)
    # and the payload class reads it back as it was written
    assert json.loads(cls.model_validate(committed_example).to_json()) == committed_example


def test_a_schema_is_in_camel_case_as_published():
    schema = schema_of("gala.opportunity.won.v1")
    assert {"opportunityId", "venueId", "wonAt", "guestCount"} <= set(schema["properties"])
    assert "opportunity_id" not in schema["properties"]
    assert schema["properties"]["wonAt"] == {"format": "date-time", "type": "string"}
    assert schema["x-gala-topic"] == "gala.pipeline.opportunity"


def test_a_payload_the_schema_refuses_is_refused():
    schema = schema_of("gala.opportunity.won.v1")
    bad = {**schema["examples"][0], "wonAt": 12}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(bad)


def copy_published(tmp_path: Path) -> Path:
    target = tmp_path / "published"
    shutil.copytree(PUBLISHED_DIR, target, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return target


def test_the_generator_refuses_to_overwrite_a_schema_with_an_incompatible_one(tmp_path, capsys):
    # As if a field of a published version had been removed from its class: the
    # committed schema has it, the class no longer does.
    directory = copy_published(tmp_path)
    path = directory / "schemas" / "gala.opportunity.won.v1.json"
    schema = json.loads(path.read_text())
    schema["properties"]["legacyCode"] = {"type": "string"}
    schema["required"].append("legacyCode")
    path.write_text(publish.render(schema))
    asyncapi_before = (directory / "asyncapi.json").read_text()
    (directory / "asyncapi.json").write_text("{}\n")

    assert publish.main(["--dir", str(directory)]) == 1

    err = capsys.readouterr().err
    assert "gala.opportunity.won.v1" in err and "removed-field" in err and "legacyCode" in err
    assert "nothing was written" in err
    assert json.loads(path.read_text())["properties"]["legacyCode"] == {"type": "string"}
    assert (directory / "asyncapi.json").read_text() == "{}\n", "it wrote something"
    assert asyncapi_before != "{}\n"


def test_the_generator_refuses_to_drop_a_published_event_type(tmp_path, capsys):
    directory = copy_published(tmp_path)
    gone = json.loads((directory / "schemas" / "gala.task.moved.v1.json").read_text())
    gone["title"] = "gala.task.teleported.v1"
    (directory / "schemas" / "gala.task.teleported.v1.json").write_text(publish.render(gone))
    assert publish.main(["--dir", str(directory)]) == 1
    assert "gala.task.teleported.v1" in capsys.readouterr().err


def test_the_generator_accepts_and_writes_a_compatible_change(tmp_path):
    # The committed schema lacks an optional field the class has (it was just added),
    # and one enum value (just added): both are compatible, the schema is rewritten.
    directory = copy_published(tmp_path)
    path = directory / "schemas" / "gala.payment.paid.v1.json"
    schema = json.loads(path.read_text())
    del schema["properties"]["externalPaymentId"]
    schema["$defs"]["PaymentStatus"]["enum"].remove("OVERDUE")
    path.write_text(publish.render(schema))
    assert publish.main(["--dir", str(directory), "--check"]) == 1  # drift
    assert publish.main(["--dir", str(directory)]) == 0
    assert path.read_text() == (SCHEMAS_DIR / path.name).read_text()
    assert publish.main(["--dir", str(directory), "--check"]) == 0


def test_the_check_finds_a_file_that_was_edited_by_hand(tmp_path, capsys):
    directory = copy_published(tmp_path)
    path = directory / "schemas" / "gala.contact.created.v1.json"
    schema = json.loads(path.read_text())
    schema["description"] = "Edited by hand."
    path.write_text(publish.render(schema))
    assert publish.main(["--dir", str(directory), "--check"]) == 1
    assert "differs: schemas/gala.contact.created.v1.json" in capsys.readouterr().err


def test_the_generated_schema_is_what_is_committed_for_each_class():
    for cls in published_events():
        assert json.loads(publish.render(json_schema(cls))) == schema_of(cls.TYPE)


# --- the AsyncAPI document ---------------------------------------------------------------


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return asyncapi_document()


def test_the_document_is_asyncapi_3_with_one_channel_per_topic(document):
    assert document["asyncapi"] == "3.0.0"
    topics = {cls.TOPIC for cls in published_events()}
    assert {c["address"] for c in document["channels"].values()} == topics
    defaults = Settings.model_fields
    for channel in document["channels"].values():
        kafka = channel["bindings"]["kafka"]
        assert kafka["topic"] == channel["address"]
        assert kafka["partitions"] == defaults["topic_partitions"].default
        assert kafka["replicas"] == defaults["topic_replication_factor"].default
    assert "Versioning promise" in document["info"]["description"]
    assert document["servers"]["kafka"]["protocol"] == "kafka"


def test_every_event_type_is_one_message_with_its_description_example_and_key(document):
    messages = document["components"]["messages"]
    assert set(messages) == {cls.TYPE for cls in published_events()}
    for cls in published_events():
        message = messages[cls.TYPE]
        assert message["summary"] == summary(cls)
        (shown,) = message["examples"]
        assert shown["payload"] == example(cls)
        assert shown["headers"]["ce_type"] == cls.TYPE
        subject = cls.model_fields[subject_field(cls)].alias
        assert shown["headers"]["ce_subject"] == shown["payload"][subject]
        assert message["x-gala-key"] == cls.model_fields[key_field(cls)].alias
        channel = next(c for c in document["channels"].values() if c["address"] == cls.TOPIC)
        assert channel["messages"][cls.TYPE] == {"$ref": f"#/components/messages/{cls.TYPE}"}


def test_a_chat_message_is_keyed_by_its_project(document):
    message = document["components"]["messages"]["gala.message.sent.v1"]
    assert message["x-gala-key"] == "projectId"
    assert "projectId" in message["bindings"]["kafka"]["key"]["description"]


def test_cloudevents_attributes_are_the_message_headers(document):
    headers = document["components"]["schemas"]["CloudEventsHeaders"]
    assert set(headers["properties"]) == {
        "ce_id",
        "ce_type",
        "ce_source",
        "ce_subject",
        "ce_time",
        "ce_specversion",
        "content-type",
        "ce_venueid",
        "ce_traceparent",
        "ce_correlationid",
        "ce_causationid",
    }
    won = document["components"]["messages"]["gala.opportunity.won.v1"]
    fixed = won["headers"]["allOf"][1]["properties"]
    assert fixed["ce_type"]["const"] == "gala.opportunity.won.v1"
    assert fixed["ce_source"]["const"] == "/gala/pipeline"


def test_senders_and_receivers_come_from_the_service_definitions(document):
    contracts = {c.name: c for c in publish.service_contracts()}
    operations = document["operations"].values()
    for cls in published_events():
        (sender,) = [name for name, c in contracts.items() if cls in c.publishes]
        receivers = sorted(
            name for name, c in contracts.items() if cls.TYPE in c.receives and name != sender
        )
        message = document["components"]["messages"][cls.TYPE]
        assert message["x-gala-sender"] == sender
        assert message["x-gala-receivers"] == receivers
        ref = {"$ref": f"#/channels/{cls.TOPIC}/messages/{cls.TYPE}"}
        sends = [o for o in operations if o["action"] == "send" and ref in o["messages"]]
        assert [o["x-gala-service"] for o in sends] == [sender]
        receives = [o for o in operations if o["action"] == "receive" and ref in o["messages"]]
        assert sorted(o["x-gala-service"] for o in receives) == receivers
        for operation in receives:
            group = operation["bindings"]["kafka"]["groupId"]["enum"]
            assert group == [consumer_group(operation["x-gala-service"])]
    # e.g. projects makes a project of every won opportunity
    won = document["components"]["messages"]["gala.opportunity.won.v1"]
    assert "projects" in won["x-gala-receivers"] and "billing" in won["x-gala-receivers"]


def test_every_service_of_the_repository_is_read_by_the_generator():
    found = {p.parent.name for p in (REPO / "services").glob("*/src/*/bootstrap.py")}
    assert found == set(publish.SERVICES)


# --- the AsyncAPI project's own parser (Node.js) -----------------------------------------


def run_parser(path: Path) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    assert node, "node is missing: install Node.js (CI needs it for the AsyncAPI parser)"
    assert (ASYNCAPI_TOOLS / "node_modules" / "@asyncapi" / "parser").is_dir(), (
        "@asyncapi/parser is missing: run `make node-tools`"
    )
    return subprocess.run(
        [node, str(ASYNCAPI_TOOLS / "validate.js"), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_asyncapi_parser_accepts_the_committed_document():
    result = run_parser(ASYNCAPI_FILE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid AsyncAPI 3.0.0" in result.stdout
    assert f"{len(published_events())} messages" in result.stdout


def test_the_asyncapi_parser_fails_with_diagnostics_on_a_broken_document(tmp_path, document):
    broken = json.loads(json.dumps(document))
    del broken["info"]["version"]
    first = next(iter(broken["channels"].values()))
    first["messages"]["nothing"] = {"$ref": "#/components/messages/does-not-exist"}
    path = tmp_path / "asyncapi.json"
    path.write_text(json.dumps(broken))
    result = run_parser(path)
    assert result.returncode == 1
    assert "INVALID" in result.stderr
    assert "error" in result.stderr and "version" in result.stderr


def test_the_declared_keys_are_the_keys_the_publishers_use():
    """The contract's key of each event is what its repository gives the outbox: the
    subject by default, the conversation (project) for chat messages."""
    from datetime import UTC, datetime

    from chat.messages.domain import Message
    from chat.messages.repository import MessageRepository
    from gala.aggregates import AggregateRepository
    from gala.contracts.chat import MessageSent, MessageType

    message = Message.sent(
        message_id="m-1", project_id="p-1", venue_id="v-1", seq=1, sender_id="u-1",
        sender_role=None, message_type=MessageType.TEXT,
        content="Hello", metadata=None, contact_id=None, now=datetime.now(UTC),
    )  # fmt: skip
    (event,) = message.collect_events()
    assert isinstance(event, MessageSent)
    repository = MessageRepository.__new__(MessageRepository)
    key = repository.partition_key(message, event)
    assert key == getattr(event, key_field(MessageSent)) == "p-1"
    assert repository.subject(message, event) == getattr(event, subject_field(MessageSent))
    # every other publisher keys by the subject (the base repository's default)
    overriding = {
        cls.__qualname__
        for cls in _subclasses(AggregateRepository)
        if "partition_key" in cls.__dict__
    }
    assert overriding == {"MessageRepository"}
    keyed_otherwise = {c.TYPE for c in published_events() if key_field(c) != subject_field(c)}
    assert keyed_otherwise == {"gala.message.sent.v1"}


def _subclasses(cls: type) -> list[type]:
    import importlib

    for name in publish.SERVICES:
        importlib.import_module(f"{name}.bootstrap")
    found, todo = [], [cls]
    while todo:
        for sub in todo.pop().__subclasses__():
            found.append(sub)
            todo.append(sub)
    return found
