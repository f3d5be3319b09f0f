"""Is a new JSON Schema of a published event version compatible with the published one?

The promise to readers: within one version (``...v1``) a payload only ever gains. Every
message that was valid stays valid, and a reader written against the published schema
keeps reading every new message. What keeps that promise (*compatible*):

- a new optional property;
- a new enum value (a widened enum): additive, as Stripe and Svix treat new enum values.
  Readers must tolerate values they do not know (a default branch, never an exhaustive
  switch that fails): the contract's ``info`` says so;
- a changed description, title, example or default (annotations).

Everything else breaks a reader or an old message, and needs a new version (a new class,
``...v2``): a removed or renamed property, a changed type (nullable or not included), a
property that becomes required, a required property that becomes optional, a new
required property, a removed enum value, a changed format, constant or constraint, another topic.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ANNOTATIONS = frozenset(
    {"title", "description", "examples", "example", "default", "$comment", "$schema", "$id"}
)
"""Keywords that document a value without constraining it: changing them is compatible."""
STRUCTURE = frozenset(
    {"type", "enum", "properties", "required", "items", "anyOf", "oneOf", "allOf", "$ref"}
)
"""Keywords compared rule by rule (the others must stay exactly as published)."""


@dataclass(frozen=True, order=True)
class Change:
    path: str
    """Where, as a JSON Pointer into the payload (``/reasons/items/points``)."""
    rule: str
    """``removed-field``, ``changed-type``, ``became-required``, ``became-optional``,
    ``new-required-field``, ``narrowed-enum``, ``changed-constraint`` (incompatible);
    ``new-optional-field``, ``widened-enum`` (compatible)."""
    detail: str

    def __str__(self) -> str:
        return f"{self.path or '/'}: {self.rule}: {self.detail}"


@dataclass(frozen=True)
class Verdict:
    incompatible: tuple[Change, ...]
    compatible: tuple[Change, ...]

    @property
    def ok(self) -> bool:
        return not self.incompatible


def compare(published: Mapping[str, Any], candidate: Mapping[str, Any]) -> Verdict:
    """The changes from ``published`` to ``candidate`` (both self-contained schemas)."""
    checker = _Checker(published, candidate)
    if published.get("x-gala-topic") != candidate.get("x-gala-topic"):
        checker.breaking.append(
            Change(
                "",
                "changed-topic",
                f"{published.get('x-gala-topic')} -> {candidate.get('x-gala-topic')}",
            )
        )
    checker.node(published, candidate, "")
    return Verdict(tuple(sorted(checker.breaking)), tuple(sorted(checker.additive)))


class _Checker:
    def __init__(self, old_root: Mapping[str, Any], new_root: Mapping[str, Any]) -> None:
        self.old_root = old_root
        self.new_root = new_root
        self.breaking: list[Change] = []
        self.additive: list[Change] = []

    def resolve(self, node: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
        seen: set[str] = set()
        while "$ref" in node:
            ref = node["$ref"]
            if not isinstance(ref, str) or not ref.startswith("#/") or ref in seen:
                raise ValueError(f"unsupported $ref {ref!r}: schemas must be self-contained")
            seen.add(ref)
            target: Any = root
            for part in ref[2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            node = {**target, **siblings}
        return node

    def variants(self, node: Mapping[str, Any], root: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        """A schema as the list of alternatives it accepts (``anyOf``/``oneOf`` flattened)."""
        node = self.resolve(node, root)
        for key in ("anyOf", "oneOf"):
            if key in node:
                rest = {k: v for k, v in node.items() if k not in (key, *ANNOTATIONS)}
                found: list[Mapping[str, Any]] = []
                for option in node[key]:
                    for variant in self.variants(option, root):
                        found.append({**rest, **variant} if rest else variant)
                return found
        types = node.get("type")
        if isinstance(types, list) and len(types) > 1:
            return [{**node, "type": t} for t in types]
        return [node]

    @staticmethod
    def kind(node: Mapping[str, Any]) -> str:
        types = node.get("type")
        if isinstance(types, list):
            types = types[0] if len(types) == 1 else ",".join(types)
        if types is None:
            if "enum" in node or "const" in node:
                return "enum"
            if "properties" in node:
                return "object"
            return "any"
        return str(types)

    def node(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str) -> None:
        old_variants = self.variants(old, self.old_root)
        new_variants = self.variants(new, self.new_root)
        old_kinds = {self.kind(v): v for v in old_variants}
        new_kinds = {self.kind(v): v for v in new_variants}
        if len(old_kinds) != len(old_variants) or len(new_kinds) != len(new_variants):
            self.compare_ambiguous(old_variants, new_variants, path)
            return
        if set(old_kinds) != set(new_kinds):
            self.breaking.append(
                Change(path, "changed-type", f"{_kinds(old_kinds)} -> {_kinds(new_kinds)}")
            )
            return
        for kind, old_variant in old_kinds.items():
            self.variant(old_variant, new_kinds[kind], path)

    def compare_ambiguous(
        self, old: list[Mapping[str, Any]], new: list[Mapping[str, Any]], path: str
    ) -> None:
        """Several alternatives of one type: only an unchanged schema is safe."""
        strip = _without_annotations
        if sorted(map(repr, map(strip, old))) != sorted(map(repr, map(strip, new))):
            self.breaking.append(Change(path, "changed-type", "the alternatives changed"))

    def variant(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str) -> None:
        self.enum(old, new, path)
        for key in sorted((set(old) | set(new)) - ANNOTATIONS - STRUCTURE - {"$defs"}):
            if key.startswith("x-"):
                continue
            if old.get(key) != new.get(key):
                self.breaking.append(
                    Change(
                        path, "changed-constraint", f"{key}: {old.get(key)!r} -> {new.get(key)!r}"
                    )
                )
        if "properties" in old or "properties" in new:
            self.object(old, new, path)
        if "items" in old or "items" in new:
            self.node(old.get("items", {}), new.get("items", {}), f"{path}/items")

    def enum(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str) -> None:
        if "enum" not in old and "enum" not in new:
            return
        if "enum" not in old:
            self.breaking.append(Change(path, "narrowed-enum", "any value -> an enum"))
            return
        if "enum" not in new:
            self.additive.append(Change(path, "widened-enum", "an enum -> any value"))
            return
        removed = [v for v in old["enum"] if v not in new["enum"]]
        added = [v for v in new["enum"] if v not in old["enum"]]
        if removed:
            self.breaking.append(Change(path, "narrowed-enum", f"removed {removed!r}"))
        if added:
            self.additive.append(Change(path, "widened-enum", f"added {added!r}"))

    def object(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str) -> None:
        old_props: Mapping[str, Any] = old.get("properties", {})
        new_props: Mapping[str, Any] = new.get("properties", {})
        old_required = set(old.get("required", ()))
        new_required = set(new.get("required", ()))
        for name in old_props:
            where = f"{path}/{name}"
            if name not in new_props:
                added = sorted(set(new_props) - set(old_props))
                hint = f" (renamed? new: {', '.join(added)})" if added else ""
                self.breaking.append(Change(where, "removed-field", f"{name} is gone{hint}"))
                continue
            if name in new_required and name not in old_required:
                self.breaking.append(Change(where, "became-required", f"{name} is now required"))
            if name in old_required and name not in new_required:
                self.breaking.append(Change(where, "became-optional", f"{name} may now be missing"))
            self.node(old_props[name], new_props[name], where)
        for name in new_props:
            if name in old_props:
                continue
            where = f"{path}/{name}"
            if name in new_required:
                self.breaking.append(
                    Change(where, "new-required-field", f"{name} is new and required")
                )
            else:
                self.additive.append(Change(where, "new-optional-field", f"{name} is new"))


def _kinds(variants: Mapping[str, Any]) -> str:
    return " | ".join(sorted(variants))


def _without_annotations(node: Any) -> Any:
    if isinstance(node, Mapping):
        return {k: _without_annotations(v) for k, v in sorted(node.items()) if k not in ANNOTATIONS}
    if isinstance(node, list):
        return [_without_annotations(v) for v in node]
    return node
