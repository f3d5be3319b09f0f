"""Webhook endpoints' rules: URLs and addresses, filters, secrets and signatures."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook

from partners.webhooks.domain import (
    DisabledReason,
    Endpoint,
    InvalidEndpoint,
    RefusedUrl,
    UrlPolicy,
    check_filters,
    check_url,
    matches,
    refused_address,
    signature,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
KNOWN = ["gala.opportunity.won.v1", "gala.payment.paid.v1", "gala.payment.due.v1"]
STRICT = UrlPolicy()


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.0.1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.251", "multicast"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "loopback"),
        ("100.64.0.1", "not a public"),
        ("fd00::1", "private"),
    ],
)
def test_non_public_addresses_are_refused(address: str, why: str) -> None:
    reason = refused_address(address)
    assert reason is not None and why in reason


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:4700::1111", "8.8.8.8"])
def test_public_addresses_pass(address: str) -> None:
    assert refused_address(address) is None


def test_https_is_required_unless_http_is_allowed() -> None:
    assert check_url("https://hooks.partner.example/x", STRICT).port == 443
    with pytest.raises(RefusedUrl, match="https"):
        check_url("http://hooks.partner.example/x", STRICT)
    target = check_url("http://hooks.partner.example:8080/x", UrlPolicy(allow_http=True))
    assert (target.scheme, target.port) == ("http", 8080)


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/x",
        "https://localhost/x",
        "https://api.localhost/x",
        "https://[::1]:8443/x",
        "https://10.0.0.1/x",
        "https://intranet/x",
        "https://user:secret@hooks.partner.example/x",
        "https://hooks.partner.example/x#frag",
        "https://hooks.partner.example/a b",
        "https:///x",
        "https://hooks.partner.example:99999/x",
        "",
        "https://" + "a" * 2100 + ".example/",
    ],
)
def test_refused_urls(url: str) -> None:
    with pytest.raises(RefusedUrl):
        check_url(url, STRICT)


def test_private_targets_may_be_allowed() -> None:
    policy = UrlPolicy(allow_http=True, allow_private=True)
    assert check_url("http://127.0.0.1:9000/hook", policy).host == "127.0.0.1"
    assert check_url("http://localhost:9000/hook", policy).host == "localhost"


def test_filters_name_known_types_or_aggregate_wildcards() -> None:
    checked = check_filters(["gala.payment.*", "gala.opportunity.won.v1", "gala.payment.*"], KNOWN)
    assert checked == ["gala.payment.*", "gala.opportunity.won.v1"]
    for bad in (["gala.unknown.v1"], ["gala.nope.*"], ["gala.*"], ["*"], []):
        with pytest.raises(InvalidEndpoint):
            check_filters(bad, KNOWN)
    with pytest.raises(InvalidEndpoint):
        check_filters(["gala.payment.*"] * 51, KNOWN)


def test_matching_is_exact_or_by_aggregate() -> None:
    assert matches(["gala.payment.*"], "gala.payment.paid.v1")
    assert not matches(["gala.payment.*"], "gala.payments.paid.v1")
    assert not matches(["gala.pay.*"], "gala.payment.paid.v1")
    assert matches(["gala.opportunity.won.v1"], "gala.opportunity.won.v1")
    assert not matches(["gala.opportunity.won.v1"], "gala.opportunity.won.v2")


def test_a_signature_is_the_one_standard_webhooks_computes() -> None:
    endpoint = Endpoint.create("e1", "v1", "https://x.example/", KNOWN[:1], "", NOW)
    secret = endpoint.secrets[0].value
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 24
    body = b'{"a":1}'
    ts = int(NOW.timestamp())
    assert signature(secret, "msg_1", ts, body) == Webhook(secret).sign("msg_1", NOW, body.decode())


def test_rotation_keeps_the_old_secret_signing_for_the_overlap() -> None:
    endpoint = Endpoint.create("e1", "v1", "https://x.example/", KNOWN[:1], "", NOW)
    old = endpoint.secrets[0].value
    new = endpoint.rotate_secret(NOW, timedelta(hours=24))
    assert new != old
    header = endpoint.signatures("m", 1, b"x", NOW + timedelta(hours=23))
    assert header.split(" ") == [signature(new, "m", 1, b"x"), signature(old, "m", 1, b"x")]
    later = endpoint.signatures("m", 1, b"x", NOW + timedelta(hours=24))
    assert later == signature(new, "m", 1, b"x")
    # a second rotation within the overlap: the oldest still ends when it was to end
    newest = endpoint.rotate_secret(NOW + timedelta(hours=1), timedelta(hours=24))
    live = [s.value for s in endpoint.signing_secrets(NOW + timedelta(hours=23, minutes=59))]
    assert live == [newest, new, old]
    live = [s.value for s in endpoint.signing_secrets(NOW + timedelta(hours=24, minutes=1))]
    assert live == [newest, new]


def test_disabling_is_announced_once() -> None:
    endpoint = Endpoint.create("e1", "v1", "https://x.example/", KNOWN[:1], "", NOW)
    endpoint.failing_since = NOW - timedelta(days=5)
    assert endpoint.disable(DisabledReason.FAILING, NOW)
    assert not endpoint.disable(DisabledReason.GONE, NOW)
    (event,) = endpoint.collect_events()
    assert event.TYPE == "gala.endpoint.disabled.v1"
    assert event.reason is DisabledReason.FAILING  # type: ignore[attr-defined]
    assert not endpoint.wants("gala.opportunity.won.v1")
    endpoint.enable(NOW)
    assert endpoint.wants("gala.opportunity.won.v1") and endpoint.failing_since is None
