"""Which service owns a path, and which routes need no login."""

from __future__ import annotations

import re
from dataclasses import dataclass

API_PREFIX = "/api/v1"

OWNERS = {
    "contacts": "contacts",
    "users": "contacts",
    "intake": "contacts",
    "opportunities": "pipeline",
    "pipeline": "pipeline",
    "rooms": "pipeline",
    "projects": "projects",
    "tasks": "projects",
    "portal": "projects",
    "messages": "chat",
    "payments": "billing",
    "documents": "billing",
    "billing": "billing",
    "partners": "partners",
    "events": "partners",
}


PARTNER_RESOURCES = frozenset({"partners", "events"})
"""Where a partner app's API key works (``/api/v1/partners/...``, ``/api/v1/events...``)."""


@dataclass(frozen=True)
class Route:
    service: str
    public: bool = False
    upload: bool = False
    partner: bool = False
    """A partner app's API key is accepted here (as well as a session)."""


@dataclass(frozen=True)
class _Rule:
    methods: frozenset[str]
    pattern: re.Pattern[str]
    route: Route


def _rule(methods: str, pattern: str, route: Route) -> _Rule:
    return _Rule(frozenset(methods.split()), re.compile(f"^{API_PREFIX}{pattern}$"), route)


# Checked in order before the owner table.
RULES = (
    # Public: authenticated by their own key or signature in the owning service.
    _rule("POST GET", "/intake/meta", Route("contacts", public=True)),
    _rule("POST", "/intake/[^/]+", Route("contacts", public=True)),
    _rule("POST", "/billing/stripe/webhook", Route("billing", public=True)),
    _rule("GET HEAD", "/portal/[^/]+", Route("projects", public=True)),
    # The published event contract is public, like the API's own documentation.
    _rule("GET HEAD", "/events/(asyncapi\\.json|docs)", Route("partners", public=True)),
    # A document's download link is signed and expiring: the link is the credential.
    _rule("GET HEAD", "/documents/[^/]+/content", Route("billing", public=True)),
    # A project's conversation belongs to chat.
    _rule(
        "GET HEAD POST PUT PATCH DELETE OPTIONS",
        "/projects/[^/]+/(messages|chat)(/.*)?",
        Route("chat"),
    ),
    # Streamed uploads get the larger body limit.
    _rule("POST", "/documents", Route("billing", upload=True)),
    _rule("PUT", "/documents/[^/]+/content", Route("billing", upload=True)),
    _rule("POST", "/contacts/import", Route("contacts", upload=True)),
)


def route_for(method: str, path: str) -> Route | None:
    """The route for a request, or ``None`` when no service owns the path."""
    if not path.startswith(API_PREFIX + "/"):
        return None
    for rule in RULES:
        if method in rule.methods and rule.pattern.match(path):
            return rule.route
    resource = path[len(API_PREFIX) + 1 :].split("/", 1)[0]
    service = OWNERS.get(resource)
    return Route(service, partner=resource in PARTNER_RESOURCES) if service else None
