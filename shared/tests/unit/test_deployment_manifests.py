"""The deployment manifests keep up with the packages in the repository.

``docker-compose.yml`` must run every service package (``services/*/pyproject.toml``,
plus ``gateway/`` when present) with the settings the kernel needs, and give every
container a healthcheck; ``deploy/k8s`` (what its kustomization lists) must give every
package a Deployment whose containers have readiness and liveness probes.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import yaml

from gala.settings import Settings, env_name

REPO_ROOT = Path(__file__).resolve().parents[3]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
K8S_DIR = REPO_ROOT / "deploy" / "k8s"

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
