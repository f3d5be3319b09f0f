"""The compatibility checker of published event schemas, on synthetic pairs: one pair
per rule, both ways where the rule is not symmetric."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from gala.contracts.compat import compare

STATUS = {"type": "string", "enum": ["OPEN", "WON", "LOST"], "title": "Outcome"}


def published() -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "gala.thing.happened.v1",
        "description": "A thing happened.",
        "x-gala-topic": "gala.things.thing",
        "$defs": {
            "Outcome": STATUS,
            "Reason": {
                "type": "object",
                "properties": {"rule": {"type": "string"}, "points": {"type": "integer"}},
                "required": ["rule", "points"],
            },
        },
        "type": "object",
        "properties": {
            "thingId": {"type": "string"},
            "amount": {"type": "string"},
            "note": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
            "outcome": {"$ref": "#/$defs/Outcome"},
            "happenedAt": {"type": "string", "format": "date-time"},
            "reasons": {"type": "array", "items": {"$ref": "#/$defs/Reason"}},
        },
        "required": ["thingId", "amount", "outcome", "happenedAt", "reasons"],
        "examples": [{"thingId": "t1"}],
    }


def rules(old: dict[str, Any], new: dict[str, Any]) -> tuple[set[str], set[str]]:
    verdict = compare(old, new)
    return {c.rule for c in verdict.incompatible}, {c.rule for c in verdict.compatible}


def test_an_identical_schema_is_compatible_with_no_changes():
    verdict = compare(published(), published())
    assert verdict.ok
    assert verdict.incompatible == () and verdict.compatible == ()


def test_annotations_may_change():
    new = published()
    new["description"] = "Something else entirely."
    new["examples"] = [{"thingId": "t2"}]
    new["properties"]["note"]["description"] = "A note."
    new["properties"]["note"]["default"] = "none"
    new["$defs"]["Outcome"]["title"] = "TheOutcome"
    assert compare(published(), new).ok


def test_a_new_optional_field_is_compatible():
    new = published()
    new["properties"]["venueName"] = {"anyOf": [{"type": "string"}, {"type": "null"}]}
    breaking, additive = rules(published(), new)
    assert breaking == set()
    assert additive == {"new-optional-field"}


def test_a_new_required_field_is_incompatible():
    new = published()
    new["properties"]["venueName"] = {"type": "string"}
    new["required"].append("venueName")
    assert rules(published(), new)[0] == {"new-required-field"}


def test_a_removed_field_is_incompatible():
    new = published()
    del new["properties"]["note"]
    assert rules(published(), new)[0] == {"removed-field"}


def test_a_renamed_field_is_incompatible_and_named_as_a_likely_rename():
    new = published()
    new["properties"]["happenedOn"] = new["properties"].pop("happenedAt")
    new["required"] = [r if r != "happenedAt" else "happenedOn" for r in new["required"]]
    verdict = compare(published(), new)
    assert {c.rule for c in verdict.incompatible} == {"removed-field", "new-required-field"}
    removed = next(c for c in verdict.incompatible if c.rule == "removed-field")
    assert removed.path == "/happenedAt" and "happenedOn" in removed.detail


def test_a_changed_type_is_incompatible():
    new = published()
    new["properties"]["amount"] = {"type": "number"}
    assert rules(published(), new)[0] == {"changed-type"}


@pytest.mark.parametrize("direction", ["gains null", "loses null"])
def test_nullability_is_part_of_the_type(direction: str):
    old, new = published(), published()
    nullable = {"anyOf": [{"type": "string"}, {"type": "null"}]}
    if direction == "gains null":
        new["properties"]["amount"] = nullable
    else:
        old["properties"]["amount"] = nullable
    assert "changed-type" in rules(old, new)[0]


def test_a_changed_format_is_incompatible():
    new = published()
    new["properties"]["happenedAt"] = {"type": "string", "format": "date"}
    assert rules(published(), new)[0] == {"changed-constraint"}


def test_a_new_constraint_is_incompatible():
    new = published()
    new["properties"]["amount"]["pattern"] = "^[0-9]+$"
    assert rules(published(), new)[0] == {"changed-constraint"}


def test_a_field_that_becomes_required_is_incompatible():
    new = published()
    new["properties"]["note"] = {"type": "string"}
    new["required"].append("note")
    breaking, _ = rules(published(), new)
    assert "became-required" in breaking


def test_a_required_field_that_becomes_optional_is_incompatible():
    new = published()
    new["required"].remove("amount")
    assert rules(published(), new)[0] == {"became-optional"}


def test_a_removed_enum_value_is_incompatible():
    new = published()
    new["$defs"]["Outcome"] = {**STATUS, "enum": ["OPEN", "WON"]}
    assert rules(published(), new)[0] == {"narrowed-enum"}


def test_an_added_enum_value_is_compatible_and_reported():
    new = published()
    new["$defs"]["Outcome"] = {**STATUS, "enum": [*STATUS["enum"], "ON_HOLD"]}
    verdict = compare(published(), new)
    assert verdict.ok
    (change,) = verdict.compatible
    assert change.rule == "widened-enum" and change.path == "/outcome"
    assert "ON_HOLD" in change.detail


def test_an_enum_where_any_string_was_allowed_is_incompatible():
    new = published()
    new["properties"]["amount"] = {"type": "string", "enum": ["1", "2"]}
    assert rules(published(), new)[0] == {"narrowed-enum"}


def test_nested_objects_are_checked_field_by_field():
    new = published()
    reason = copy.deepcopy(new["$defs"]["Reason"])
    reason["properties"]["points"] = {"type": "string"}
    new["$defs"]["Reason"] = reason
    verdict = compare(published(), new)
    (change,) = verdict.incompatible
    assert change.rule == "changed-type" and change.path == "/reasons/items/points"


def test_an_inlined_definition_equal_to_its_reference_is_compatible():
    new = published()
    new["properties"]["outcome"] = dict(STATUS)
    assert compare(published(), new).ok


def test_another_topic_is_incompatible():
    new = published()
    new["x-gala-topic"] = "gala.things.other"
    assert rules(published(), new)[0] == {"changed-topic"}


def test_a_reference_outside_the_schema_is_refused():
    new = published()
    new["properties"]["outcome"] = {"$ref": "https://elsewhere.example/outcome.json"}
    with pytest.raises(ValueError, match="self-contained"):
        compare(published(), new)
