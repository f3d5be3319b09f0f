"""``python -m gala.contracts.publish [--check]`` (``make contracts``): writes the
published contract: one JSON Schema per event type and version
(``published/schemas/<type>.json``) and the AsyncAPI document (``published/asyncapi.json``).

It refuses (exit 1, writing nothing) to replace a published schema with an incompatible
one, or to drop a published event type: that is a new version (a new class, ``.v2``).
``--check`` writes nothing and fails on any difference between the committed files and a
fresh generation (what CI runs, through the drift test).

The generator imports every service's bootstrap (their ServiceDefinitions say who sends
and who receives what); the services themselves only read the committed files.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gala.contracts.asyncapi import ServiceContract, build_document
from gala.contracts.compat import Change, compare
from gala.contracts.published import PUBLISHED_DIR
from gala.contracts.schemas import json_schema, published_events
from gala.settings import Settings

SERVICES = ("contacts", "pipeline", "projects", "chat", "billing", "partners")
"""Every service (a package with a ``bootstrap.service`` ServiceDefinition)."""


def render(document: Mapping[str, Any]) -> str:
    """How a contract file is written: stable, readable, one trailing newline."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def service_contracts(names: Sequence[str] = SERVICES) -> list[ServiceContract]:
    """What each service's ServiceDefinition publishes and reacts to."""
    contracts = []
    for name in names:
        definition = importlib.import_module(f"{name}.bootstrap").service
        receives = [
            event.TYPE
            for event in published_events()
            if definition.subscriptions.for_type(event.TYPE)
        ]
        contracts.append(ServiceContract(definition.name, tuple(definition.publishes), receives))
    return contracts


def generate(
    services: Sequence[ServiceContract] | None = None, directory: Path = PUBLISHED_DIR
) -> dict[Path, str]:
    """Every contract file, by path (in ``directory``), as it should be committed."""
    events = published_events()
    schemas = directory / "schemas"
    files = {schemas / f"{cls.TYPE}.json": render(json_schema(cls)) for cls in events}
    defaults = Settings.model_fields
    document = build_document(
        service_contracts() if services is None else services,
        events,
        partitions=int(defaults["topic_partitions"].default),
        replicas=int(defaults["topic_replication_factor"].default),
    )
    files[directory / "asyncapi.json"] = render(document)
    return files


@dataclass(frozen=True)
class Refusal:
    event_type: str
    changes: tuple[Change, ...]

    def __str__(self) -> str:
        lines = [f"{self.event_type}: incompatible with its published schema"]
        lines += [f"  {change}" for change in self.changes]
        return "\n".join(lines)


def incompatibilities(
    published: Mapping[str, Mapping[str, Any]], generated: Mapping[str, Mapping[str, Any]]
) -> list[Refusal]:
    """Why ``generated`` may not replace ``published`` (schemas by event type)."""
    refusals = []
    for event_type, old in sorted(published.items()):
        new = generated.get(event_type)
        if new is None:
            gone = Change("", "removed-event-type", "a published event type may not disappear")
            refusals.append(Refusal(event_type, (gone,)))
            continue
        verdict = compare(old, new)
        if not verdict.ok:
            refusals.append(Refusal(event_type, verdict.incompatible))
    return refusals


def committed_schemas(directory: Path = PUBLISHED_DIR) -> dict[str, dict[str, Any]]:
    """The committed schemas in ``directory``, by event type."""
    return {
        path.stem: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted((directory / "schemas").glob("*.json"))
    }


def drift(files: Mapping[Path, str], directory: Path = PUBLISHED_DIR) -> list[str]:
    """The committed files that differ from ``files`` (or are missing, or extra)."""
    found = []
    for path, text in sorted(files.items()):
        if not path.exists():
            found.append(f"missing: {path.relative_to(directory)}")
        elif path.read_text(encoding="utf-8") != text:
            found.append(f"differs: {path.relative_to(directory)}")
    for path in sorted((directory / "schemas").glob("*.json")):
        if path not in files:
            found.append(f"not generated: {path.relative_to(directory)}")
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gala.contracts.publish", description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail on drift, write nothing")
    parser.add_argument(
        "--dir", type=Path, default=PUBLISHED_DIR, help="the published contract's folder"
    )
    args = parser.parse_args(argv)
    directory: Path = args.dir
    files = generate(directory=directory)
    generated = {
        path.stem: json.loads(text)
        for path, text in files.items()
        if path.parent == directory / "schemas"
    }
    refusals = incompatibilities(committed_schemas(directory), generated)
    if refusals:
        for refusal in refusals:
            print(refusal, file=sys.stderr)
        print(
            "refused: an incompatible change needs a new version (a new class, .v2);"
            " nothing was written",
            file=sys.stderr,
        )
        return 1
    if args.check:
        differences = drift(files, directory)
        for line in differences:
            print(line, file=sys.stderr)
        if differences:
            print("the published contract is stale: run `make contracts`", file=sys.stderr)
        return 1 if differences else 0
    (directory / "schemas").mkdir(parents=True, exist_ok=True)
    written = 0
    for path, text in files.items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            written += 1
    print(f"{len(files) - 1} schemas and asyncapi.json in {directory}: {written} written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
