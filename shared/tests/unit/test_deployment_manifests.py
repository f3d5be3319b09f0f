"""The deployment manifests keep up with the packages in the repository.

``docker-compose.yml`` must run every service package (``services/*/pyproject.toml``,
plus ``gateway/`` when present) with the settings the kernel needs, and give every
container a healthcheck; ``deploy/k8s`` (what its kustomization lists) must give every
package a Deployment whose containers have readiness and liveness probes, every API an
HPA, every worker a KEDA ScaledObject on its consumer group's lag (the topics read from
the service's own subscriptions), every Deployment a PodDisruptionBudget and Prometheus
scrape annotations; ``deploy/observability`` may use only metrics ``gala.metrics``
declares. (Schema validation and promtool: test_k8s_offline_validation.py.)
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.metrics import MetricWrapperBase

from gala import metrics
from gala.events.topics import consumer_group
from gala.settings import Settings, env_name

REPO_ROOT = Path(__file__).resolve().parents[3]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
K8S_DIR = REPO_ROOT / "deploy" / "k8s"
OBSERVABILITY = REPO_ROOT / "deploy" / "observability"

REQUIRED_ENV = ("GALA_KAFKA_BOOTSTRAP", "GALA_MONGO_URL", "GALA_INTERNAL_TOKEN_SECRET")


def service_packages() -> set[str]:
    """The runnable packages: each service under services/, and the gateway."""
    packages = {path.parent.name for path in (REPO_ROOT / "services").glob("*/pyproject.toml")}
    if (REPO_ROOT / "gateway" / "pyproject.toml").is_file():
        packages.add("gateway")
    return packages


def compose_services() -> dict[str, dict[str, Any]]:
    compose = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    services: dict[str, dict[str, Any]] = compose.get("services") or {}
    return services


def environment(service: dict[str, Any]) -> dict[str, str | None]:
    """A compose service's environment, whether written as a mapping or a list."""
    env = service.get("environment") or {}
    if isinstance(env, dict):
        return {str(key): None if value is None else str(value) for key, value in env.items()}
    pairs = (str(item).partition("=") for item in env)
    return {key: value if sep else None for key, sep, value in pairs}


def kustomize_documents(directory: Path) -> list[dict[str, Any]]:
    """Every manifest a kustomization lists, following nested kustomization folders."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text(encoding="utf-8"))
    documents: list[dict[str, Any]] = []
    for resource in kustomization.get("resources") or []:
        path = directory / resource
        if path.is_dir():
            documents.extend(kustomize_documents(path))
        else:
            loaded = yaml.safe_load_all(path.read_text(encoding="utf-8"))
            documents.extend(doc for doc in loaded if doc)
    return documents


def deployments() -> dict[str, dict[str, Any]]:
    return {
        doc["metadata"]["name"]: doc
        for doc in kustomize_documents(K8S_DIR)
        if doc.get("kind") == "Deployment"
    }


def test_the_repository_has_service_packages() -> None:
    # Guards the checks below against passing vacuously on a wrong REPO_ROOT.
    assert service_packages(), f"no services/*/pyproject.toml under {REPO_ROOT}"


def test_every_service_package_has_a_compose_service() -> None:
    missing = sorted(service_packages() - compose_services().keys())
    assert not missing, f"packages without a service in docker-compose.yml: {missing}"


def test_every_compose_service_has_a_healthcheck() -> None:
    lacking = []
    for name, service in compose_services().items():
        healthcheck = service.get("healthcheck") or {}
        test = healthcheck.get("test")
        if healthcheck.get("disable") or not test or test in ("NONE", ["NONE"]):
            lacking.append(name)
    assert not lacking, f"compose services without a healthcheck: {sorted(lacking)}"


def test_gala_compose_services_have_the_kernel_settings() -> None:
    services = compose_services()
    problems = []
    for package in sorted(service_packages() & services.keys()):
        env = environment(services[package])
        missing = [key for key in REQUIRED_ENV if not env.get(key)]
        if missing:
            problems.append(f"{package} lacks {missing}")
    assert not problems, "docker-compose.yml: " + "; ".join(problems)


def test_every_service_package_has_a_k8s_deployment() -> None:
    missing = sorted(service_packages() - deployments().keys())
    assert not missing, f"packages without a Deployment in deploy/k8s: {missing}"


def test_every_k8s_deployment_has_readiness_and_liveness_probes() -> None:
    lacking = []
    for name, deployment in deployments().items():
        containers = deployment["spec"]["template"]["spec"].get("containers") or []
        if not containers:
            lacking.append(f"{name} (no containers)")
        for container in containers:
            absent = [
                probe for probe in ("readinessProbe", "livenessProbe") if not container.get(probe)
            ]
            if absent:
                lacking.append(f"{name}/{container.get('name')} lacks {absent}")
    assert not lacking, "deploy/k8s: " + "; ".join(lacking)


def settings_class(package: str) -> type[Settings]:
    """The settings class a package's processes load (its own, or the kernel's)."""
    name = "gateway.settings" if package == "gateway" else f"{package}.settings"
    try:
        module = importlib.import_module(name)
    except ImportError:
        return Settings
    own = [
        value
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, Settings) and value.__module__ == name
    ]
    return own[0] if own else Settings


def k8s_env(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    containers = deployment["spec"]["template"]["spec"].get("containers") or []
    return [entry for container in containers for entry in container.get("env") or []]


def package_of(deployment: dict[str, Any]) -> str:
    return str(deployment["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"])


def test_every_secret_a_process_needs_is_provided() -> None:
    """Outside dev mode a process without its secrets refuses to start: every manifest
    gives each process every secret its settings class declares."""
    services = compose_services()
    problems = []
    for package in sorted(service_packages()):
        needed = [env_name(name) for name in settings_class(package).SECRETS]
        env = environment(services[package])
        problems += [f"compose {package} lacks {key}" for key in needed if not env.get(key)]
    for name, deployment in deployments().items():
        needed = [env_name(n) for n in settings_class(package_of(deployment)).SECRETS]
        given = {
            entry["name"]
            for entry in k8s_env(deployment)
            if entry.get("valueFrom", {}).get("secretKeyRef")
        }
        problems += [
            f"k8s {name} lacks a secretKeyRef for {key}" for key in needed if key not in given
        ]
    assert not problems, "; ".join(problems)


def test_proxy_hop_counts_agree() -> None:
    """A service counts one proxy more than the gateway in front of it (the gateway
    appends the address it saw), in compose and in the cluster."""

    def hops(package: str, *sources: dict[str, Any]) -> int:
        for source in sources:
            if source.get("GALA_TRUSTED_PROXIES") not in (None, ""):
                return int(source["GALA_TRUSTED_PROXIES"])
        default: int = settings_class(package).model_fields["trusted_proxies"].default
        return default

    services = compose_services()
    compose = {p: hops(p, environment(services[p])) for p in service_packages()}
    config = next(
        doc["data"]
        for doc in kustomize_documents(K8S_DIR)
        if doc.get("kind") == "ConfigMap" and doc["metadata"]["name"] == "gala-config"
    )
    cluster = {
        name: hops(
            package_of(deployment),
            {e["name"]: e.get("value") for e in k8s_env(deployment)},
            config,
        )
        for name, deployment in deployments().items()
    }
    assert compose["gateway"] == 0 and cluster["gateway"] == 1  # published / behind an ingress
    for package, count in compose.items():
        if package != "gateway":
            assert count == compose["gateway"] + 1, f"compose {package}: {count}"
    for name, count in cluster.items():
        if package_of(deployments()[name]) != "gateway":
            assert count == cluster["gateway"] + 1, f"k8s {name}: {count}"


# --- scaling, disruption budgets, scraping ------------------------------------------------


def documents_of(kind: str) -> list[dict[str, Any]]:
    return [doc for doc in kustomize_documents(K8S_DIR) if doc.get("kind") == kind]


def gala_config() -> dict[str, str]:
    return next(
        doc["data"] for doc in documents_of("ConfigMap") if doc["metadata"]["name"] == "gala-config"
    )


def component(deployment: dict[str, Any]) -> str:
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    return str(labels["app.kubernetes.io/component"])


def workers() -> dict[str, dict[str, Any]]:
    return {name: d for name, d in deployments().items() if component(d) == "worker"}


def apis() -> dict[str, dict[str, Any]]:
    return {name: d for name, d in deployments().items() if component(d) == "api"}


def subscribed_topics(package: str) -> list[str]:
    definition = importlib.import_module(f"{package}.bootstrap").service
    return sorted(definition.subscriptions.topics)


def test_every_service_runs_an_api_and_a_worker_deployment() -> None:
    services = service_packages() - {"gateway"}
    assert {package_of(d) for d in workers().values()} == services
    assert {package_of(d) for d in apis().values()} == services | {"gateway"}


def test_every_worker_scales_on_its_consumer_groups_lag() -> None:
    """One ScaledObject per worker Deployment: KEDA's Kafka scaler on the service's own
    group, one trigger per topic its subscriptions read, the broker taken from the
    workers' environment (gala-config), from 1 replica to the partition count."""
    scaled = {doc["spec"]["scaleTargetRef"]["name"]: doc for doc in documents_of("ScaledObject")}
    partitions = int(gala_config()["GALA_TOPIC_PARTITIONS"])
    problems = []
    for name, deployment in sorted(workers().items()):
        package = package_of(deployment)
        scaled_object = scaled.pop(name, None)
        if scaled_object is None:
            problems.append(f"{name} has no ScaledObject")
            continue
        spec = scaled_object["spec"]
        if spec["scaleTargetRef"].get("kind", "Deployment") != "Deployment":
            problems.append(f"{name}: the ScaledObject targets a {spec['scaleTargetRef']['kind']}")
        if (spec.get("minReplicaCount"), spec.get("maxReplicaCount")) != (1, partitions):
            problems.append(
                f"{name}: replicas {spec.get('minReplicaCount')}..{spec.get('maxReplicaCount')}"
                f", expected 1..{partitions} (GALA_TOPIC_PARTITIONS)"
            )
        triggers = spec["triggers"]
        if any(trigger["type"] != "kafka" for trigger in triggers):
            problems.append(f"{name}: a trigger that is not KEDA's Kafka scaler")
        metadata = [trigger["metadata"] for trigger in triggers]
        topics = sorted(str(m.get("topic")) for m in metadata)
        if topics != subscribed_topics(package):
            problems.append(f"{name}: triggers on {topics}, reads {subscribed_topics(package)}")
        for m in metadata:
            if m.get("consumerGroup") != consumer_group(package):
                problems.append(f"{name}: group {m.get('consumerGroup')}")
            if (
                m.get("bootstrapServersFromEnv") != "GALA_KAFKA_BOOTSTRAP"
                or "bootstrapServers" in m
            ):
                problems.append(f"{name}: the broker must come from GALA_KAFKA_BOOTSTRAP")
            if m.get("offsetResetPolicy") != "earliest":  # as the service groups start
                problems.append(f"{name}: offsetResetPolicy {m.get('offsetResetPolicy')}")
            if not str(m.get("lagThreshold", "")).isdigit():
                problems.append(f"{name}: lagThreshold {m.get('lagThreshold')!r}")
        if "GALA_KAFKA_BOOTSTRAP" not in gala_config():
            problems.append("gala-config has no GALA_KAFKA_BOOTSTRAP for KEDA to read")
        env_from = deployment["spec"]["template"]["spec"]["containers"][0].get("envFrom") or []
        if {"configMapRef": {"name": "gala-config"}} not in env_from:
            problems.append(f"{name}'s first container does not read gala-config")
    problems += [f"ScaledObject for {name}, which is no worker Deployment" for name in scaled]
    assert not problems, "; ".join(problems)


def test_hpas_scale_the_apis_and_never_a_worker() -> None:
    """KEDA owns the workers' replica count (through the HPA it makes); an HPA of ours on
    a worker would fight it. Neither kind of Deployment sets `replicas` (apply would
    reset what the autoscaler chose)."""
    targets = [
        doc["spec"]["scaleTargetRef"]["name"] for doc in documents_of("HorizontalPodAutoscaler")
    ]
    assert sorted(targets) == sorted(apis()), targets
    assert not set(targets) & set(workers())
    with_replicas = [name for name, d in deployments().items() if "replicas" in d["spec"]]
    assert not with_replicas, f"Deployments that set replicas: {with_replicas}"


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, f"unsupported selector {selector}"
    return all(labels.get(key) == value for key, value in selector["matchLabels"].items())


def test_every_deployment_has_a_disruption_budget_of_its_own() -> None:
    """Each Deployment's pods are covered by exactly one PodDisruptionBudget, which
    selects no other Deployment's pods and lets at least one pod go (a budget allowing
    no eviction would block every node drain)."""
    budgets = documents_of("PodDisruptionBudget")
    problems = []
    for name, deployment in sorted(deployments().items()):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        covering = [b for b in budgets if selects(b["spec"]["selector"], labels)]
        if len(covering) != 1:
            problems.append(f"{name} is covered by {len(covering)} budgets")
            continue
        budget = covering[0]["spec"]
        others = [
            other
            for other, d in deployments().items()
            if other != name
            and selects(
                covering[0]["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"]
            )
        ]
        if others:
            problems.append(f"{name}'s budget also selects {others}")
        if "minAvailable" in budget or budget.get("maxUnavailable", 0) in (0, "0%"):
            problems.append(f"{name}'s budget may allow no eviction: {budget}")
    assert not problems, "; ".join(problems)


def test_every_process_is_scraped_on_its_http_port() -> None:
    """Prometheus scrape annotations on every pod template (workers have no Service),
    naming the container's http port and /metrics, which every role serves."""
    problems = []
    for name, deployment in sorted(deployments().items()):
        template = deployment["spec"]["template"]
        annotations = template["metadata"].get("annotations") or {}
        ports = {
            port["name"]: port["containerPort"]
            for container in template["spec"]["containers"]
            for port in container.get("ports") or []
        }
        expected = {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(ports.get("http")),
            "prometheus.io/path": "/metrics",
        }
        wrong = {k: annotations.get(k) for k, v in expected.items() if annotations.get(k) != v}
        if wrong:
            problems.append(f"{name}: {wrong}, expected {expected}")
    assert not problems, "; ".join(problems)


# --- dashboards and alerts use what the services expose ----------------------------------

SERIES_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
}


def exposed_series() -> dict[str, set[str]]:
    """Every series name gala.metrics' collectors expose, with its label names."""
    series: dict[str, set[str]] = {}
    for collector in vars(metrics).values():
        if not isinstance(collector, MetricWrapperBase):
            continue
        labels = set(collector._labelnames)
        for family in collector.describe():
            for suffix in SERIES_SUFFIXES[family.type]:
                extra = {"le"} if suffix == "_bucket" else set()
                series[family.name + suffix] = labels | extra
    return series


NOT_METRICS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
NOT_METRICS |= {"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"}
LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
MATCHERS = re.compile(r"\{([^}]*)\}")
IDENTIFIER = re.compile(r"(?<![\w.$:])([a-zA-Z_:][\w:]*)(\s*\()?")


def promql_names(expr: str) -> tuple[set[str], set[str]]:
    """(metric names, label names) a PromQL expression uses: strings and range
    selectors dropped, label names taken from matchers and by/without/on/ignoring
    lists, and every other identifier not followed by ``(`` (a function or aggregation)
    and not a keyword is a metric name."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)
    text = re.sub(r"\[[^\]]*\]", "", text)
    labels: set[str] = set()
    for matchers in MATCHERS.findall(text):
        labels |= set(re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", matchers))
    text = MATCHERS.sub(" ", text)
    for names in LABEL_LIST.findall(text):
        labels |= {name.strip() for name in names.split(",") if name.strip()}
    text = LABEL_LIST.sub(" ", text)
    names = {
        match.group(1)
        for match in IDENTIFIER.finditer(text)
        if not match.group(2) and match.group(1).lower() not in NOT_METRICS
    }
    return names, labels


def observability_queries() -> list[tuple[str, str]]:
    """(where, PromQL) for every query of the alert rules and of the dashboard."""
    queries = []
    rules = yaml.safe_load((OBSERVABILITY / "alerts.yaml").read_text(encoding="utf-8"))
    for group in rules["groups"]:
        for rule in group["rules"]:
            queries.append((f"alerts.yaml {rule.get('alert') or rule.get('record')}", rule["expr"]))
    dashboard = json.loads((OBSERVABILITY / "grafana-dashboard.json").read_text(encoding="utf-8"))
    for panel in dashboard["panels"]:
        for target in panel.get("targets") or []:
            queries.append((f"dashboard panel {panel['title']!r}", target["expr"]))
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        text = query.get("query") if isinstance(query, dict) else query
        found = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", str(text or ""))
        if found:
            queries.append(
                (f"dashboard variable {variable['name']}", f"{found[1]}{{{found[2]}=''}}")
            )
    return queries


def test_promql_names_finds_metrics_and_labels() -> None:
    names, labels = promql_names(
        'histogram_quantile(0.99, sum by (le, event_type) (rate(gala_x_bucket{service="$s",'
        'outcome=~"a|b"}[$__rate_interval]))) / on (service) group_left gala_y offset 5m '
        "> 1e-9 and count_over_time(gala_z[1h:1m]) > 0"
    )
    assert names == {"gala_x_bucket", "gala_y", "gala_z"}
    assert labels == {"le", "event_type", "service", "outcome"}


def test_dashboards_and_alerts_use_only_metrics_the_services_expose() -> None:
    exposed = exposed_series()
    assert "gala_http_requests_total" in exposed and "gala_consumer_lag" in exposed
    queries = observability_queries()
    assert len(queries) > 10
    problems = []
    for where, expr in queries:
        names, labels = promql_names(expr)
        if not names:
            problems.append(f"{where}: no metric in {expr!r}")
        unknown = sorted(names - exposed.keys())
        if unknown:
            problems.append(f"{where}: {unknown} are not exposed by gala.metrics")
        known_labels = set().union(*(exposed.get(name, set()) for name in names))
        foreign = sorted(labels - known_labels)
        if foreign:
            problems.append(f"{where}: labels {foreign} are not on {sorted(names)}")
    assert not problems, "\n".join(problems)


def test_the_dashboard_covers_each_concern_per_service() -> None:
    """Lag, throughput, error rate, outbox age and dead letters, every query scoped by
    the dashboard's ``service`` variable."""
    dashboard = json.loads((OBSERVABILITY / "grafana-dashboard.json").read_text(encoding="utf-8"))
    assert "service" in {v["name"] for v in dashboard["templating"]["list"]}
    panels = [p for p in dashboard["panels"] if p.get("type") != "row"]
    exprs = [t["expr"] for p in panels for t in p.get("targets") or []]
    unscoped = [e for e in exprs if "$service" not in e]
    assert not unscoped, unscoped
    concerns = {
        "lag": "gala_consumer_lag",
        "throughput": "gala_events_handled_total",
        "error rate": 'status_class="5xx"',
        "outbox age": "gala_outbox_oldest_pending_age_seconds",
        "dead letters": "gala_dead_letters_total",
    }
    missing = [c for c, needle in concerns.items() if not any(needle in e for e in exprs)]
    assert not missing, f"dashboard lacks panels for {missing}"
    alerts = yaml.safe_load((OBSERVABILITY / "alerts.yaml").read_text(encoding="utf-8"))
    rules = " ".join(r["expr"] for g in alerts["groups"] for r in g["rules"])
    for needle in ("gala_consumer_lag", "gala_dead_letters_total", 'status_class="5xx"'):
        assert needle in rules, needle
    assert re.search(r"gala_outbox_oldest_pending_age_seconds\)\s*>\s*60\b", rules)
