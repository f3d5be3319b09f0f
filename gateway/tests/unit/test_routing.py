import pytest

from gateway.routing import Route, route_for


@pytest.mark.parametrize(
    ("method", "path", "service"),
    [
        ("GET", "/api/v1/contacts", "contacts"),
        ("PATCH", "/api/v1/contacts/c1", "contacts"),
        ("GET", "/api/v1/users/me", "contacts"),
        ("POST", "/api/v1/opportunities/o1/win", "pipeline"),
        ("PUT", "/api/v1/pipeline/stages", "pipeline"),
        ("GET", "/api/v1/rooms", "pipeline"),
        ("GET", "/api/v1/projects", "projects"),
        ("PATCH", "/api/v1/tasks/t1", "projects"),
        ("GET", "/api/v1/projects/p1/messages", "chat"),
        ("POST", "/api/v1/projects/p1/messages/read", "chat"),
        ("GET", "/api/v1/projects/p1/chat", "chat"),
        ("GET", "/api/v1/messages/unread", "chat"),
        ("GET", "/api/v1/payments", "billing"),
        ("POST", "/api/v1/documents/d1/sign", "billing"),
        ("PUT", "/api/v1/billing/policy", "billing"),
    ],
)
def test_each_resource_goes_to_its_owner(method, path, service):
    route = route_for(method, path)
    assert route is not None and route.service == service
    assert not route.public


@pytest.mark.parametrize(
    ("method", "path", "service"),
    [
        ("POST", "/api/v1/intake/venue-key-123", "contacts"),
        ("GET", "/api/v1/intake/meta", "contacts"),
        ("POST", "/api/v1/intake/meta", "contacts"),
        ("POST", "/api/v1/billing/stripe/webhook", "billing"),
        ("GET", "/api/v1/portal/0123abcd", "projects"),
        ("GET", "/api/v1/documents/doc-1/content", "billing"),  # a signed, expiring link
    ],
)
def test_only_intake_webhooks_and_the_portal_summary_are_public(method, path, service):
    assert route_for(method, path) == Route(service, public=True)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/intake/venue-key-123"),  # intake only takes posts
        ("POST", "/api/v1/portal/0123abcd"),  # the portal summary is read-only
        ("GET", "/api/v1/portal/0123abcd/tasks"),  # deeper portal routes need a login
        ("GET", "/api/v1/billing/stripe/webhook"),
        ("GET", "/api/v1/documents/doc-1"),  # the document itself needs a login
        ("PUT", "/api/v1/documents/doc-1/content"),  # replacing its file too
    ],
)
def test_other_methods_on_public_paths_need_a_login(method, path):
    route = route_for(method, path)
    assert route is not None and not route.public


def test_uploads_are_marked_for_the_larger_limit():
    assert route_for("POST", "/api/v1/documents") == Route("billing", upload=True)
    assert route_for("PUT", "/api/v1/documents/d/content") == Route("billing", upload=True)
    assert route_for("POST", "/api/v1/contacts/import") == Route("contacts", upload=True)
    assert not route_for("GET", "/api/v1/documents").upload  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "path", ["/api/v1/unknown", "/api/v2/contacts", "/internal/v1/users/by-subject/x", "/api/v1"]
)
def test_unowned_paths_have_no_route(path):
    assert route_for("GET", path) is None
