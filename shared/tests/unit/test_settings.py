"""Settings: secrets required outside dev mode, list forms, one-line configuration errors."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from billing.settings import BillingSettings
from gala.settings import BadConfiguration, Settings, load_settings
from gateway.settings import GatewaySettings

SECRET = "s" * 40


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """The environment of a process outside dev mode, with no secret set."""
    for name in list(os.environ):
        if name.startswith("GALA_"):
            monkeypatch.delenv(name)
    yield monkeypatch


def test_without_its_secret_a_process_refuses_in_one_line(production: pytest.MonkeyPatch) -> None:
    with pytest.raises(BadConfiguration) as refused:
        load_settings(Settings)
    assert str(refused.value) == (
        "bad configuration: GALA_INTERNAL_TOKEN_SECRET is required (or set GALA_DEV_MODE=true)"
    )


def test_billing_needs_a_document_link_secret_of_its_own(production: pytest.MonkeyPatch) -> None:
    production.setenv("GALA_INTERNAL_TOKEN_SECRET", SECRET)
    with pytest.raises(BadConfiguration, match="GALA_DOCUMENT_LINK_SECRET is required"):
        load_settings(BillingSettings)
    production.setenv("GALA_DOCUMENT_LINK_SECRET", "d" * 40)
    settings = load_settings(BillingSettings)
    assert settings.link_secret() == b"d" * 40
    assert settings.link_secret() != SECRET.encode()


def test_dev_values_are_refused_outside_dev_mode(production: pytest.MonkeyPatch) -> None:
    production.setenv("GALA_DEV_MODE", "true")
    dev_secret = load_settings(Settings).internal_token_secret.get_secret_value()
    production.delenv("GALA_DEV_MODE")
    production.setenv("GALA_INTERNAL_TOKEN_SECRET", dev_secret)
    with pytest.raises(BadConfiguration, match="holds a dev-only value"):
        load_settings(Settings)


def test_dev_mode_makes_up_every_secret(production: pytest.MonkeyPatch) -> None:
    production.setenv("GALA_DEV_MODE", "true")
    settings = load_settings(BillingSettings)
    assert len(settings.internal_token_secret.get_secret_value()) >= 32
    assert settings.link_secret()
    assert settings.link_secret() != settings.internal_token_secret.get_secret_value().encode()


@pytest.mark.parametrize(
    "value",
    [
        "https://app.example,https://admin.example",
        '["https://app.example", "https://admin.example"]',
        " https://app.example , https://admin.example ",
    ],
)
def test_a_list_setting_takes_json_or_commas(production: pytest.MonkeyPatch, value: str) -> None:
    production.setenv("GALA_DEV_MODE", "true")
    production.setenv("GALA_AUTH_AUTHORIZED_PARTIES", value)
    settings = load_settings(GatewaySettings)
    assert settings.auth_authorized_parties == ["https://app.example", "https://admin.example"]


def test_a_single_value_is_a_list_of_one(production: pytest.MonkeyPatch) -> None:
    production.setenv("GALA_DEV_MODE", "true")
    production.setenv("GALA_AUTH_AUTHORIZED_PARTIES", "https://app.example")
    assert load_settings(GatewaySettings).auth_authorized_parties == ["https://app.example"]


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        (
            "GALA_AUTH_AUTHORIZED_PARTIES",
            '["https://app.example"',
            "GALA_AUTH_AUTHORIZED_PARTIES cannot be read: expected a JSON list or comma-separated",
        ),
        ("GALA_TOPIC_PARTITIONS", "three", "GALA_TOPIC_PARTITIONS=three: "),
        ("GALA_TOPIC_PARTITIONS", "0", "GALA_TOPIC_PARTITIONS=0: "),
        ("GALA_CONSUMER_START_FROM", "first", "expected one of earliest, latest"),
        ("GALA_DEV_MODE", "maybe", "GALA_DEV_MODE=maybe: "),
    ],
)
def test_a_malformed_setting_is_named_with_its_form(
    production: pytest.MonkeyPatch, name: str, value: str, says: str
) -> None:
    production.setenv("GALA_INTERNAL_TOKEN_SECRET", SECRET)
    production.setenv(name, value)
    with pytest.raises(BadConfiguration) as refused:
        load_settings(GatewaySettings)
    line = str(refused.value)
    assert "\n" not in line
    assert says in line


@pytest.mark.parametrize("module", ["contacts", "gateway", "billing"])
def test_the_process_prints_one_line_and_exits(module: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GALA_")}
    env["GALA_AUTH_AUTHORIZED_PARTIES"] = "https://app.example"  # a comma form is fine
    done = subprocess.run(
        [sys.executable, "-m", module], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "bad configuration: GALA_INTERNAL_TOKEN_SECRET is required (or set GALA_DEV_MODE=true)"
    ]
