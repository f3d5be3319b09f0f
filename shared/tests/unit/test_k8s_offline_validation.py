"""deploy/k8s validates offline: every listed manifest and the rendered kustomization,
against the Kubernetes JSON schemas (kubernetes-validate) and KEDA's CRD schema; and
deploy/observability's alert rules and dashboard queries pass promtool (Debian's).

The tools come from ``make deploy-tools`` (``make test`` builds them first), which exports
where they are; run alone, the test looks in ``.tools/``. A missing tool fails the test,
it never skips: CI must not pass without the check. The validator runs with every HTTP(S)
proxy pointed at a closed local port, so a step that tried the network would fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
K8S_DIR = REPO_ROOT / "deploy" / "k8s"
VALIDATOR = K8S_DIR / "validate.py"
OBSERVABILITY = REPO_ROOT / "deploy" / "observability"
TOOLS = REPO_ROOT / ".tools"
NO_NETWORK = "http://127.0.0.1:9"  # the discard port: nothing listens there


@dataclass(frozen=True)
class Tools:
    python: Path
    kustomize: Path
    crds: Path


def tool(variable: str, pattern: str) -> Path:
    named = os.environ.get(variable)
    candidates = [Path(named)] if named else sorted(TOOLS.glob(pattern), reverse=True)
    for candidate in candidates:
        if candidate.exists():
            return candidate
    pytest.fail(
        f"{variable} / .tools/{pattern} is missing: run `make deploy-tools` "
        "(make test runs it first)",
        pytrace=False,
    )


@pytest.fixture(scope="module")
def tools() -> Tools:
    return Tools(
        python=tool("GALA_K8S_VALIDATE_PYTHON", "k8s-validate/bin/python"),
        kustomize=tool("GALA_KUSTOMIZE", "kustomize-*/kustomize"),
        crds=tool("GALA_KEDA_CRDS", "keda-crds-*"),
    )


def validate(tools: Tools, directory: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "HTTP_PROXY": NO_NETWORK,
        "HTTPS_PROXY": NO_NETWORK,
        "http_proxy": NO_NETWORK,
        "https_proxy": NO_NETWORK,
        "NO_PROXY": "",
        "no_proxy": "",
    }
    return subprocess.run(
        [
            str(tools.python),
            str(VALIDATOR),
            str(directory),
            "--kustomize",
            str(tools.kustomize),
            "--crds",
            str(tools.crds),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        check=False,
    )


def test_every_manifest_and_the_rendered_kustomization_are_valid(tools: Tools) -> None:
    result = validate(tools, K8S_DIR)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    summary = result.stdout.strip().splitlines()[-1]
    assert " documents valid against Kubernetes" in summary, output
    # The rendered output holds what the checks are about (not an empty render).
    for kind in ("Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ScaledObject"):
        assert kind in summary.partition("kinds: ")[2].split(", "), summary


def broken_copy(tmp_path: Path, edits: dict[str, tuple[str, str]]) -> Path:
    copy = tmp_path / "k8s"
    shutil.copytree(K8S_DIR, copy, ignore=shutil.ignore_patterns("secret.env"))
    for name, (old, new) in edits.items():
        path = copy / name
        text = path.read_text("utf-8")
        assert old in text, f"{name} no longer has {old!r}: update this test"
        path.write_text(text.replace(old, new, 1), "utf-8")
    return copy


def test_a_wrong_field_in_a_custom_resource_fails(tools: Tools, tmp_path: Path) -> None:
    """KEDA's schema is applied, strictly: trigger metadata values are strings, and a
    misspelt field (minReplicas is the HPA's name, not KEDA's) is refused."""
    copy = broken_copy(
        tmp_path,
        {
            "billing.yaml": ('lagThreshold: "50"', "lagThreshold: 50"),
            "chat.yaml": ("minReplicaCount: 1", "minReplicas: 1"),
        },
    )
    result = validate(tools, copy)
    assert result.returncode == 1, result.stdout + result.stderr
    invalid = [line for line in result.stdout.splitlines() if line.startswith("INVALID")]
    assert any(
        "ScaledObject/billing-worker" in line and "lagThreshold" in line for line in invalid
    ), invalid
    assert any("ScaledObject/chat-worker" in line and "minReplicas" in line for line in invalid), (
        invalid
    )
    # Both in the listed file and in the rendered output.
    assert any(line.startswith("INVALID rendered: ScaledObject/chat-worker") for line in invalid)
    assert any(line.startswith("INVALID chat.yaml: ScaledObject/chat-worker") for line in invalid)


def test_a_wrong_field_in_a_kubernetes_resource_fails(tools: Tools, tmp_path: Path) -> None:
    """The Kubernetes schemas are applied strictly: a wrong type, and an unknown field
    deep in a pod template, are refused."""
    copy = broken_copy(
        tmp_path,
        {
            "contacts.yaml": ("maxUnavailable: 1\n  # A pod", "maxUnavailable: [1]\n  # A pod"),
            "gateway.yaml": ("readOnlyRootFilesystem: true", "readOnlyRootFileSystem: true"),
        },
    )
    result = validate(tools, copy)
    assert result.returncode == 1, result.stdout + result.stderr
    invalid = [line for line in result.stdout.splitlines() if line.startswith("INVALID")]
    assert any(
        "PodDisruptionBudget/contacts" in line and "maxUnavailable" in line for line in invalid
    ), invalid
    assert any(
        "Deployment/gateway" in line and "readOnlyRootFileSystem" in line for line in invalid
    ), invalid


def test_a_kind_without_a_schema_fails(tools: Tools, tmp_path: Path) -> None:
    copy = broken_copy(
        tmp_path,
        {"namespace.yaml": ("kind: Namespace", "kind: Namespaces")},
    )
    result = validate(tools, copy)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "no schema" in result.stdout, result.stdout


@pytest.fixture(scope="module")
def promtool() -> Path:
    return tool("GALA_PROMTOOL", "promtool/promtool")


def run_promtool(promtool: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(promtool), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=OBSERVABILITY,
        check=False,
    )


def test_the_alert_rules_pass_promtool_and_their_unit_tests(promtool: Path) -> None:
    """Syntax and semantics: ``alerts.test.yaml`` feeds each alert the series that must
    raise it (with a healthy one beside it) and checks when it fires, with which labels
    and text."""
    checked = run_promtool(promtool, "check", "rules", "alerts.yaml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout
    tested = run_promtool(promtool, "test", "rules", "alerts.test.yaml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def dashboard_queries() -> list[str]:
    dashboard = json.loads((OBSERVABILITY / "grafana-dashboard.json").read_text("utf-8"))
    return [
        target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets") or []
        if target.get("expr")
    ]


def as_prometheus(query: str) -> str:
    """A dashboard query with Grafana's variables replaced by what they expand to."""
    return query.replace("$__rate_interval", "5m").replace("$service", "billing")


def test_every_dashboard_query_is_valid_promql(promtool: Path, tmp_path: Path) -> None:
    queries = dashboard_queries()
    assert queries
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"gala:dashboard_query_{i}", "expr": as_prometheus(query)}
                    for i, query in enumerate(queries)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(json.dumps(rules), "utf-8")  # JSON is YAML
    checked = run_promtool(promtool, "check", "rules", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(queries)} rules found" in checked.stdout, checked.stdout


def test_promtool_refuses_a_broken_rule(promtool: Path, tmp_path: Path) -> None:
    """The check has teeth: a query with a syntax error is refused."""
    path = tmp_path / "broken.yaml"
    broken = {"groups": [{"name": "x", "rules": [{"record": "x:y", "expr": "sum by (le (x)"}]}]}
    path.write_text(json.dumps(broken), "utf-8")
    checked = run_promtool(promtool, "check", "rules", str(path))
    assert checked.returncode != 0, checked.stdout
