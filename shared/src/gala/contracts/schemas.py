"""The published form of each event payload class: its JSON Schema, its one-line
description and an example payload.

A schema is the class's pydantic JSON Schema as published: camelCase names (by alias),
serialization mode (what a reader receives: a decimal is a string, a time an RFC 3339
string), every field's own docstring as its description, and the class's example.

The example is built from the field types, named values for common field names and the
``EXAMPLE`` class attributes of the class and its bases (a mapping of field name to
value, the closest class winning), then validated by the class itself and serialised
exactly as a publisher would: it is a payload a reader could receive.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import itertools
import json
import pkgutil
import textwrap
import types
import typing
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from pydantic import BaseModel
from pydantic.alias_generators import to_camel

from gala.events.model import Event, registry

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
TOOLING_MODULES = frozenset({"schemas", "compat", "asyncapi", "publish", "published"})
"""Modules of ``gala.contracts`` that publish the contract rather than declare payloads."""

EXAMPLE_TIME = datetime(2026, 6, 13, 15, 30, tzinfo=UTC)
_ID_NAMESPACE = uuid.UUID("5f0c1e9a-8d7b-4e0f-9a51-3b1c2d4e5f60")

_NAMED_VALUES: dict[str, Any] = {
    "venue_id": "grand-hall",
    "email": "ana.garcia@example.com",
    "name": "Ana García",
    "phone": "+34 600 123 456",
    "currency": "EUR",
    "received_currency": "EUR",
    "amount": Decimal("2500.00"),
    "received_amount": Decimal("2000.00"),
    "value": Decimal("18500.00"),
    "stage": "Proposal sent",
    "previous_stage": "Site visit",
    "reason": "Chose another venue",
    "event_type": "Wedding",
    "guest_count": 120,
    "room_assignment": "room-terrace",
    "room_name": "Terrace",
    "title": "Confirm the menu tasting",
    "lead_heat": 72,
    "previous_heat": 40,
    "sequence": 42,
    "position": 3,
    "previous_position": 1,
    "days_before": 7,
    "days_overdue": 0,
    "points": 20,
    "rule": "replied-within-a-day",
    "detail": "Answered our proposal within 3 hours.",
    "content_type": "application/pdf",
    "size": 482133,
    "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "payment_method": "card",
    "external_payment_id": "pi_3PqExample000001",
    "checkout_session_id": "cs_test_a1Example000001",
    "note": "Refunded the difference by bank transfer.",
    "resolved_by": "user-owner",
    "signer_name": "Ana García",
    "image": "https://images.example/ana.png",
    "url": "https://partner.example/webhooks/gala",
    "description": "Syncs won events to our calendar.",
    "key_prefix": "gala_pk_AbCd",
}


def load_payload_modules() -> None:
    """Import every payload module of ``gala.contracts`` (which fills the registry)."""
    import gala.contracts as package

    for module in pkgutil.iter_modules(package.__path__):
        if module.name not in TOOLING_MODULES and not module.name.startswith("_"):
            importlib.import_module(f"{package.__name__}.{module.name}")


def published_events() -> list[type[Event]]:
    """Every published event class, ordered by its type: the payload classes of the
    contract's own modules (``gala.contracts.*``), never a class some other code (a test)
    registered."""
    load_payload_modules()
    classes = [registry.get(event_type) for event_type in registry.types()]
    return [cls for cls in classes if cls.__module__.startswith(f"{__package__}.")]


def own_docstring(cls: type) -> str:
    """The class's own docstring, cleaned (never one inherited from a base)."""
    doc = cls.__dict__.get("__doc__")
    return inspect.cleandoc(doc) if isinstance(doc, str) else ""


def summary(cls: type[Event]) -> str:
    """The event type's one-line description: the first line of its class docstring."""
    return own_docstring(cls).split("\n\n")[0].replace("\n", " ").strip()


def field_docstrings(cls: type[BaseModel]) -> dict[str, str]:
    """Each field's docstring (a string right below its annotation), bases first."""
    found: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not (isinstance(klass, type) and issubclass(klass, BaseModel)):
            continue
        if klass.__module__.startswith("pydantic"):
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        body = ast.parse(source).body[0]
        if not isinstance(body, ast.ClassDef):
            continue
        statements = body.body
        for this, after in itertools.pairwise(statements):
            if (
                isinstance(this, ast.AnnAssign)
                and isinstance(this.target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                found[this.target.id] = inspect.cleandoc(after.value.value)
    return found


def _nested_models(cls: type[BaseModel]) -> dict[str, type[BaseModel]]:
    """Every model a payload's fields refer to, by class name (as pydantic's ``$defs``)."""
    seen: dict[str, type[BaseModel]] = {}

    def walk(annotation: Any) -> None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation.__name__ not in seen:
                seen[annotation.__name__] = annotation
                for info in annotation.model_fields.values():
                    walk(info.annotation)
            return
        for argument in typing.get_args(annotation):
            walk(argument)

    for info in cls.model_fields.values():
        walk(info.annotation)
    return seen


def _describe_fields(schema: dict[str, Any], model: type[BaseModel]) -> None:
    docs = field_docstrings(model)
    properties: dict[str, Any] = schema.get("properties", {})
    for name, info in model.model_fields.items():
        alias = info.serialization_alias or info.alias or to_camel(name)
        prop = properties.get(alias)
        if prop is None:
            continue
        prop.pop("title", None)
        if name in docs and "description" not in prop:
            prop["description"] = docs[name]


def json_schema(cls: type[Event]) -> dict[str, Any]:
    """The event type's published JSON Schema (2020-12), with its example."""
    generated = cls.model_json_schema(by_alias=True, mode="serialization")
    _describe_fields(generated, cls)
    nested = _nested_models(cls)
    for name, definition in generated.get("$defs", {}).items():
        if name in nested:
            _describe_fields(definition, nested[name])
    schema: dict[str, Any] = {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"urn:gala:event:{cls.TYPE}",
        "title": cls.TYPE,
        "description": own_docstring(cls),
        "x-gala-topic": cls.TOPIC,
    }
    for key, value in generated.items():
        if key not in ("title", "description"):
            schema[key] = value
    schema["examples"] = [example(cls)]
    return schema


def _declared_examples(cls: type[BaseModel]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        declared = klass.__dict__.get("EXAMPLE")
        if isinstance(declared, Mapping):
            values.update(declared)
    return values


def _example_id(field: str) -> str:
    return str(uuid.uuid5(_ID_NAMESPACE, field.removeprefix("previous_")))


def _value_for(field: str, annotation: Any, declared: Mapping[str, Any]) -> Any:
    if field in declared:
        return declared[field]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _value_for(field, options[0], declared) if options else None
    if origin in (list, tuple, set, frozenset):
        (item, *_) = typing.get_args(annotation) or (str,)
        return [_value_for(field.removesuffix("s"), item, {})]
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        members = list(annotation)
        return members[1 if field.startswith("previous_") and len(members) > 1 else 0]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _model_values(annotation)
    if field in _NAMED_VALUES:
        return _NAMED_VALUES[field]
    if annotation is bool:
        return field in ("active",)
    if annotation is int:
        return 1
    if annotation is Decimal:
        return Decimal("100.00")
    if annotation is datetime:
        return EXAMPLE_TIME
    if annotation is date:
        return EXAMPLE_TIME.date()
    if annotation is str and (field.endswith("_id") or field.endswith("_ids")):
        return _example_id(field)
    if annotation is str:
        return f"example {field.replace('_', ' ')}"
    raise TypeError(f"no example value for {field}: {annotation!r}; declare it in EXAMPLE")


def _model_values(model: type[BaseModel]) -> dict[str, Any]:
    declared = _declared_examples(model)
    return {
        name: _value_for(name, info.annotation, declared)
        for name, info in model.model_fields.items()
    }


def example(cls: type[Event]) -> dict[str, Any]:
    """An example payload of the event type, exactly as a publisher would write it."""
    payload: dict[str, Any] = json.loads(cls.model_validate(_model_values(cls)).to_json())
    return payload
