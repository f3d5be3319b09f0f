"""The event contract's page for people: the AsyncAPI document rendered as one HTML page.

Pure: no I/O. Rendered on the server from the document alone (every channel, every
message with its description, key, headers, payload fields and example): no script, no
external resource, one inline style sheet allowed by its hash in the page's own
Content-Security-Policy.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

STYLE = """
:root { --ink: #1f2430; --muted: #5b6475; --line: #dde2ea; --soft: #f5f7fa;
  --accent: #3552c9; --accent-soft: #e8edff; --send: #0f7b53; --receive: #8a4b08; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto,
  "DejaVu Sans", sans-serif; color: var(--ink); background: #fff; }
header.top { background: linear-gradient(120deg, #1e2b6b, #3552c9); color: #fff;
  padding: 28px 40px 24px; }
header.top h1 { margin: 0 0 4px; font-size: 28px; }
header.top .meta { opacity: .85; font-size: 14px; }
header.top code { background: rgba(255,255,255,.15); color: #fff; }
header.top a { color: #fff; }
.layout { display: grid; grid-template-columns: 290px minmax(0, 1fr); }
nav.toc { border-right: 1px solid var(--line); padding: 20px 18px; background: var(--soft);
  font-size: 13px; position: sticky; top: 0; align-self: start; max-height: 100vh;
  overflow-y: auto; }
nav.toc h2 { font-size: 12px; text-transform: uppercase; letter-spacing: .06em;
  color: var(--muted); margin: 14px 0 6px; }
nav.toc ul { list-style: none; margin: 0 0 8px; padding: 0; }
nav.toc li { margin: 2px 0; }
nav.toc li.msg { padding-left: 12px; }
nav.toc a { color: var(--ink); text-decoration: none; }
nav.toc a:hover { color: var(--accent); }
main { padding: 24px 40px 60px; max-width: 1100px; }
.card h2 { margin-top: 0; }
main h2 { font-size: 22px; margin: 36px 0 8px; padding-bottom: 6px;
  border-bottom: 2px solid var(--line); }
main h3 { font-size: 18px; margin: 0 0 4px; }
main h3 code { font-size: 16px; background: var(--accent-soft); color: #1e2b6b; }
main h4 { font-size: 13px; text-transform: uppercase; letter-spacing: .05em;
  color: var(--muted); margin: 16px 0 6px; }
a { color: var(--accent); }
code { font: 13px/1.4 ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace;
  background: var(--soft); padding: 1px 5px; border-radius: 4px; }
pre { background: #141a2e; color: #e6e9f2; padding: 14px 16px; border-radius: 8px;
  overflow-x: auto; font: 12.5px/1.5 ui-monospace, "DejaVu Sans Mono", Menlo, monospace; }
.intro p { margin: 0 0 10px; }
.card { border: 1px solid var(--line); border-radius: 10px; padding: 18px 20px;
  margin: 16px 0; background: #fff; box-shadow: 0 1px 2px rgba(20,30,60,.05); }
.channel { background: var(--soft); }
.facts { display: flex; flex-wrap: wrap; gap: 8px 18px; font-size: 13px;
  color: var(--muted); margin: 6px 0 8px; }
.facts b { color: var(--ink); font-weight: 600; }
.pill { display: inline-block; font-size: 12px; padding: 1px 8px; border-radius: 999px;
  background: var(--accent-soft); color: var(--accent); margin: 0 4px 4px 0; }
.pill.send { background: #e3f6ee; color: var(--send); }
.pill.receive { background: #fdf0e1; color: var(--receive); }
.summary { font-size: 15px; margin: 2px 0 8px; }
.description { color: var(--muted); white-space: pre-line; margin: 0 0 8px; }
table { border-collapse: collapse; width: 100%; font-size: 13.5px; margin: 4px 0 8px; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line);
  vertical-align: top; }
th { font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted);
  background: var(--soft); }
td.name code { background: none; padding: 0; font-weight: 600; }
td.req { color: #b42318; font-size: 12px; white-space: nowrap; }
td.opt { color: var(--muted); font-size: 12px; white-space: nowrap; }
.values { color: var(--muted); font-size: 12.5px; }
"""


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    required: bool
    description: str
    values: tuple[str, ...] = ()


def style_hash() -> str:
    """The CSP source that allows exactly the page's inline style sheet."""
    digest = hashlib.sha256(STYLE.encode()).digest()
    return "'sha256-" + base64.b64encode(digest).decode() + "'"


def content_security_policy() -> str:
    return (
        f"default-src 'none'; style-src {style_hash()}; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    )


class _Resolver:
    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document

    def resolve(self, node: Any) -> tuple[str | None, Mapping[str, Any]]:
        """``node`` with its ``$ref`` followed: (the component's name, the schema)."""
        name = None
        seen = 0
        while isinstance(node, Mapping) and "$ref" in node and seen < 20:
            ref = str(node["$ref"])
            name = ref.rsplit("/", 1)[-1]
            target: Any = self.document
            for part in ref.removeprefix("#/").split("/"):
                target = target.get(part, {}) if isinstance(target, Mapping) else {}
            node = target
            seen += 1
        return name, node if isinstance(node, Mapping) else {}

    def merged(self, node: Any) -> Mapping[str, Any]:
        """A schema with its ``allOf`` parts merged (properties and required added up)."""
        _, schema = self.resolve(node)
        if "allOf" not in schema:
            return schema
        result: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        properties: dict[str, Any] = {}
        required: list[str] = []
        for part in schema["allOf"]:
            piece = self.merged(part)
            for key, value in piece.items():
                if key == "properties":
                    for prop, prop_schema in value.items():
                        properties[prop] = {**properties.get(prop, {}), **prop_schema}
                elif key == "required":
                    required += [r for r in value if r not in required]
                elif key not in result:
                    result[key] = value
        result["properties"] = properties
        result["required"] = required
        return result

    def describe(self, node: Any) -> tuple[str, tuple[str, ...], Mapping[str, Any] | None]:
        """(the type as people read it, the enum values, the object to list inside)."""
        name, schema = self.resolve(node)
        variants = schema.get("anyOf") or schema.get("oneOf")
        if variants:
            nullable = any(self.resolve(v)[1].get("type") == "null" for v in variants)
            parts = [self.describe(v) for v in variants if self.resolve(v)[1].get("type") != "null"]
            text = " or ".join(p[0] for p in parts) + (" or null" if nullable else "")
            values = tuple(v for p in parts for v in p[1])
            inner = next((p[2] for p in parts if p[2] is not None), None)
            return text, values, inner
        kind = schema.get("type", "any")
        if "const" in schema:
            return f"{kind}, always {json.dumps(schema['const'])}", (), None
        if "enum" in schema:
            label = f"{name} ({kind})" if name else f"enum ({kind})"
            return label, tuple(str(v) for v in schema["enum"]), None
        if kind == "array":
            text, values, inner = self.describe(schema.get("items", {}))
            return f"array of {text}", values, inner
        if kind == "object" or "properties" in schema:
            return (f"object ({name})" if name else "object"), (), schema
        if "format" in schema:
            return f"{kind} ({schema['format']})", (), None
        return str(kind), (), None

    def fields(self, node: Any, prefix: str = "", depth: int = 0) -> Iterator[Field]:
        schema = self.merged(node)
        required = set(schema.get("required", ()))
        for prop, prop_schema in schema.get("properties", {}).items():
            text, values, inner = self.describe(prop_schema)
            _, resolved = self.resolve(prop_schema)
            doc = str(prop_schema.get("description") or resolved.get("description") or "")
            name = f"{prefix}{prop}"
            yield Field(name, text, prop in required, doc, values)
            if inner is not None and depth < 4:
                array = "array of" in text
                yield from self.fields(inner, f"{name}{'[]' if array else ''}.", depth + 1)


_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")
_EM = re.compile(r"\*([^*\s][^*]*)\*")
_LINK = re.compile(r"\[([^\]]+)\]\((https://[^)\s]+)\)")
_RST_CODE = re.compile(r"``([^`]+)``")


def inline(text: str) -> str:
    """Escaped text with the document's bits of Markdown (and docstrings' ``code``)."""
    out = html.escape(_RST_CODE.sub(r"`\1`", text), quote=False)
    out = _CODE.sub(r"<code>\1</code>", out)
    out = _BOLD.sub(r"<strong>\1</strong>", out)
    out = _EM.sub(r"<em>\1</em>", out)
    return _LINK.sub(r'<a href="\2" rel="noreferrer">\1</a>', out)


def paragraphs(text: str) -> str:
    blocks = [b.strip() for b in text.split("\n\n") if b.strip()]
    return "".join(f"<p>{inline(' '.join(b.split()))}</p>" for b in blocks)


def anchor(kind: str, name: str) -> str:
    return f"{kind}-" + re.sub(r"[^A-Za-z0-9_-]", "-", name)


def _e(value: Any) -> str:
    return html.escape(str(value))


def _field_table(fields: list[Field]) -> str:
    if not fields:
        return "<p class='description'>None.</p>"
    rows = []
    for f in fields:
        values = (
            f"<div class='values'>values: {', '.join(f'<code>{_e(v)}</code>' for v in f.values)}"
            "</div>"
            if f.values
            else ""
        )
        presence = (
            "<td class='req'>required</td>" if f.required else "<td class='opt'>optional</td>"
        )
        rows.append(
            f"<tr><td class='name'><code>{_e(f.name)}</code></td><td>{_e(f.type)}</td>"
            f"{presence}<td>{inline(f.description)}{values}</td></tr>"
        )
    return (
        "<table><thead><tr><th>Name</th><th>Type</th><th>Presence</th><th>Description</th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def render(document: Mapping[str, Any]) -> str:
    """The whole page."""
    resolver = _Resolver(document)
    info = document.get("info", {})
    channels: Mapping[str, Any] = document.get("channels", {})
    operations: Mapping[str, Any] = document.get("operations", {})
    messages: Mapping[str, Any] = document.get("components", {}).get("messages", {})

    by_channel: dict[str, list[tuple[str, str]]] = {}
    for op in operations.values():
        channel_id = str(op.get("channel", {}).get("$ref", "")).rsplit("/", 1)[-1]
        service = str(op.get("x-gala-service", ""))
        by_channel.setdefault(channel_id, []).append((str(op.get("action")), service))

    toc = []
    sections = []
    for channel_id, channel in channels.items():
        message_ids = [str(ref["$ref"]).rsplit("/", 1)[-1] for ref in channel["messages"].values()]
        toc.append(
            f"<li><a href='#{anchor('channel', channel_id)}'><code>{_e(channel['address'])}"
            "</code></a></li>"
        )
        toc += [
            f"<li class='msg'><a href='#{anchor('message', m)}'>"
            f"{_e(m.removeprefix('gala.'))}</a></li>"
            for m in message_ids
        ]
        kafka = channel.get("bindings", {}).get("kafka", {})
        ops = by_channel.get(channel_id, [])
        pills = "".join(
            f"<span class='pill {_e(action)}'>{_e(service)} {_e(action)}s</span>"
            for action, service in sorted(ops, key=lambda o: (o[0] != "send", o[1]))
        )
        sections.append(
            f"<section class='card channel' id='{anchor('channel', channel_id)}'>"
            f"<h2>Channel <code>{_e(channel['address'])}</code></h2>"
            f"<p class='summary'>{inline(str(channel.get('summary', '')))}</p>"
            f"<p class='description'>{inline(str(channel.get('description', '')))}</p>"
            f"<div class='facts'><span>Kafka topic <b>{_e(kafka.get('topic', ''))}</b></span>"
            f"<span>partitions <b>{_e(kafka.get('partitions', '?'))}</b></span>"
            f"<span>replicas <b>{_e(kafka.get('replicas', '?'))}</b></span></div>"
            f"<div>{pills}</div></section>"
        )
        for message_id in message_ids:
            sections.append(_message(resolver, message_id, messages.get(message_id, {})))

    servers = "".join(
        f"<li><code>{_e(s.get('host'))}</code> ({_e(s.get('protocol'))} "
        f"{_e(s.get('protocolVersion', ''))}): {inline(str(s.get('description', '')))}</li>"
        for s in document.get("servers", {}).values()
    )
    title = _e(info.get("title", "Events"))
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{title} {_e(info.get('version', ''))}</title><style>{STYLE}</style></head><body>"
        f"<header class='top'><h1>{title}</h1><div class='meta'>AsyncAPI "
        f"{_e(document.get('asyncapi', ''))} · contract version {_e(info.get('version', ''))}"
        f" · {len(channels)} channels · {len(messages)} event types · machine-readable: "
        "<a href='asyncapi.json'>asyncapi.json</a></div></header>"
        "<div class='layout'><nav class='toc'><h2>Channels and events</h2>"
        f"<ul>{''.join(toc)}</ul></nav><main><section class='intro'>"
        f"{paragraphs(str(info.get('description', '')))}<h4>Servers</h4><ul>{servers}</ul>"
        "<h4 id='headers'>CloudEvents headers (every message)</h4>"
        f"{_field_table(_common_headers(resolver, messages))}</section>"
        f"{''.join(sections)}</main></div></body></html>"
    )


def _common_headers(resolver: _Resolver, messages: Mapping[str, Any]) -> list[Field]:
    """The headers every message shares (its ``allOf``'s referenced part)."""
    for message in messages.values():
        for part in resolver.resolve(message.get("headers", {}))[1].get("allOf", []):
            if "$ref" in part:
                return list(resolver.fields(part))
    return []


def _own_headers(resolver: _Resolver, message: Mapping[str, Any]) -> list[Field]:
    """What the message fixes of the common headers (its type, source, subject)."""
    _, headers = resolver.resolve(message.get("headers", {}))
    parts = headers.get("allOf")
    if not parts:
        return list(resolver.fields(headers))
    own = [p for p in parts if "$ref" not in p]
    return [
        f for part in own for f in resolver.fields({**part, "required": list(part["properties"])})
    ]


def _details(summary: str, description: str) -> str:
    """The description beyond the summary (nothing when it only repeats it)."""
    first, _, rest = description.partition("\n\n")
    if " ".join(first.split()) == " ".join(summary.split()):
        description = rest
    return description.strip()


def _message(resolver: _Resolver, message_id: str, message: Mapping[str, Any]) -> str:
    headers = _own_headers(resolver, message)
    payload = list(resolver.fields(message.get("payload", {})))
    key = message.get("bindings", {}).get("kafka", {}).get("key", {})
    receivers = message.get("x-gala-receivers", [])
    details = _details(str(message.get("summary", "")), str(message.get("description", "")))
    receiving = (
        "".join(f"<span class='pill receive'>{_e(r)}</span>" for r in receivers) or "none yet"
    )
    examples = "".join(
        "<pre>"
        + _e(
            json.dumps(
                {"headers": ex.get("headers", {}), "payload": ex.get("payload", {})},
                indent=2,
                ensure_ascii=False,
            )
        )
        + "</pre>"
        for ex in message.get("examples", [])
    )
    return (
        f"<section class='card' id='{anchor('message', message_id)}'>"
        f"<h3><code>{_e(message.get('name', message_id))}</code></h3>"
        f"<p class='summary'>{inline(str(message.get('summary', '')))}</p>"
        f"<p class='description'>{inline(details)}</p>"
        f"<div class='facts'><span>topic <b>{_e(message.get('x-gala-topic', ''))}</b></span>"
        f"<span>key <b>{_e(message.get('x-gala-key', ''))}</b>: "
        f"{inline(str(key.get('description', '')))}</span>"
        f"<span>content type <b>{_e(message.get('contentType', ''))}</b></span></div>"
        f"<div><span class='pill send'>sent by {_e(message.get('x-gala-sender', ''))}</span>"
        f" received by {receiving}</div>"
        "<h4>Headers</h4><p class='description'>The <a href='#headers'>CloudEvents headers</a>"
        f", with:</p>{_field_table(headers)}"
        f"<h4>Payload</h4>{_field_table(payload)}"
        f"<h4>Example</h4>{examples}</section>"
    )
