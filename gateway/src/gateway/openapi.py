"""One OpenAPI document for the whole API, merged from every service's own."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Mapping
from typing import Any

import httpx

from gala.api import PROBLEM_SCHEMA, problem_response_doc
from gateway.routing import API_PREFIX, route_for

CACHE_SECONDS = 30.0
GATEWAY_ANSWERS = {
    "400": "The path or the body cannot be read (a dot segment, a control character...)",
    "413": "The request body is too large",
    "429": "Too many requests (Retry-After says when to try again)",
    "503": "The service is unavailable",
    "504": "The service did not answer in time",
}
"""What the gateway itself may answer to any operation, before or instead of the service."""
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def merge(documents: Mapping[str, dict[str, Any]], unavailable: list[str]) -> dict[str, Any]:
    """Merge services' documents: their public paths, tagged by service, and schemas."""
    merged: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "Gala API",
            "version": "1",
            "description": "Every service's API, through the gateway.",
        },
        "servers": [{"url": "/"}],
        "paths": {},
        "components": {
            "schemas": {},
            "securitySchemes": {
                "session": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
        "security": [{"session": []}],
        "tags": [],
    }
    if unavailable:
        merged["info"]["x-unavailable-services"] = sorted(unavailable)
    schemas: dict[str, Any] = merged["components"]["schemas"]
    operation_ids: set[str] = set()
    for service, document in sorted(documents.items()):
        document = _namespaced(service, document, schemas)
        merged["tags"].append({"name": service})
        for path, item in document.get("paths", {}).items():
            if not path.startswith(API_PREFIX + "/"):
                continue  # health and internal endpoints are not part of the public API
            item = dict(item)
            for method in METHODS:
                operation = item.get(method)
                if operation is None:
                    continue
                operation = dict(operation)
                operation["tags"] = [service]
                if operation.get("operationId") in operation_ids:
                    operation["operationId"] = f"{service}_{operation['operationId']}"
                operation_ids.add(operation.get("operationId", ""))
                route = route_for(method.upper(), path)
                responses = operation["responses"] = dict(operation.get("responses", {}))
                for status, description in GATEWAY_ANSWERS.items():
                    responses.setdefault(status, problem_response_doc(description))
                if route is not None and route.public:
                    operation["security"] = []
                else:
                    responses.setdefault("401", problem_response_doc("Not logged in"))
                    responses.setdefault("403", problem_response_doc("Not allowed"))
                item[method] = operation
            merged["paths"][path] = item
        schemas.update(document.get("components", {}).get("schemas", {}))
    schemas["Problem"] = PROBLEM_SCHEMA
    return merged


def _namespaced(service: str, document: dict[str, Any], taken: Mapping[str, Any]) -> dict[str, Any]:
    """Rename this document's schemas that clash with a different one already merged."""
    own = document.get("components", {}).get("schemas", {})
    clashes = {name for name, schema in own.items() if name in taken and taken[name] != schema}
    if not clashes:
        return document
    renamed = {name: f"{service}_{name}" for name in clashes}
    document = _rewrite_refs(copy.deepcopy(document), renamed)
    schemas = document["components"]["schemas"]
    for old, new in renamed.items():
        schemas[new] = schemas.pop(old)
    return document


def _rewrite_refs(node: Any, renamed: Mapping[str, str]) -> Any:
    prefix = "#/components/schemas/"
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(prefix):
                name = value[len(prefix) :]
                node[key] = prefix + renamed.get(name, name)
            else:
                _rewrite_refs(value, renamed)
    elif isinstance(node, list):
        for value in node:
            _rewrite_refs(value, renamed)
    return node


class MergedOpenApi:
    """Fetches and merges the services' documents, cached for a short while."""

    def __init__(self, clients: Mapping[str, httpx.AsyncClient]) -> None:
        self._clients = clients
        self._cached: tuple[float, dict[str, Any]] | None = None

    async def document(self) -> dict[str, Any]:
        if self._cached is not None and self._cached[0] > time.monotonic():
            return self._cached[1]
        results = await asyncio.gather(*(self._fetch(client) for client in self._clients.values()))
        documents = {
            service: doc for service, doc in zip(self._clients, results, strict=True) if doc
        }
        unavailable = [service for service in self._clients if service not in documents]
        merged = merge(documents, unavailable)
        if not unavailable:
            self._cached = (time.monotonic() + CACHE_SECONDS, merged)
        return merged

    @staticmethod
    async def _fetch(client: httpx.AsyncClient) -> dict[str, Any] | None:
        try:
            response = await client.get("/openapi.json", timeout=5)
            response.raise_for_status()
            document: dict[str, Any] = response.json()
            return document
        except (httpx.HTTPError, ValueError):
            return None
