"""Validate deploy/k8s offline: every manifest its kustomization lists and the rendered
kustomization, against the Kubernetes JSON schemas and the CRDs' own schemas.

    validate.py --kustomize BIN --crds DIR [--kubernetes-version 1.33] [KUSTOMIZATION_DIR]

Nothing here reaches the network:

- the Kubernetes schemas are the ones the PyPI package ``kubernetes-validate`` ships
  (strict: an unknown field fails, as ``kubectl apply --validate=strict`` would);
- a custom resource (KEDA's ``ScaledObject``) is checked against the ``openAPIV3Schema``
  of its CRD, read from ``--crds`` (the CRD manifests KEDA's Go module ships), made
  strict the same way (an object with declared properties takes no others unless the
  CRD preserves unknown fields);
- ``kustomize build`` renders a copy of the folder, with a ``secret.env`` made from
  ``secret.env.example`` (placeholder values) when none exists.

A document whose kind has no schema fails: nothing passes unchecked. Runs with the
Python of the tools environment ``make deploy-tools`` builds (.tools/k8s-validate).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

DEFAULT_KUBERNETES_VERSION = "1.33"


@dataclass(frozen=True)
class Document:
    origin: str
    body: dict[str, Any]

    @property
    def label(self) -> str:
        kind = self.body.get("kind", "?")
        name = (self.body.get("metadata") or {}).get("name", "?")
        return f"{self.origin}: {kind}/{name}"


def load_documents(text: str, origin: str) -> list[Document]:
    return [Document(origin, body) for body in yaml.safe_load_all(text) if body]


def listed_manifests(directory: Path) -> Iterator[Path]:
    """Every file a kustomization lists under ``resources``, nested folders followed."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text("utf-8"))
    for resource in kustomization.get("resources") or []:
        path = directory / resource
        if path.is_dir():
            yield from listed_manifests(path)
        else:
            yield path


def render(kustomize: Path, directory: Path) -> str:
    """``kustomize build`` of a copy of ``directory`` (the Secret's env file made up from
    its example when absent: it is git-ignored, and CI has none)."""
    with tempfile.TemporaryDirectory(prefix="gala-k8s-") as scratch:
        copy = Path(scratch) / directory.name
        shutil.copytree(directory, copy)
        secret_env, example = copy / "secret.env", copy / "secret.env.example"
        if not secret_env.exists() and example.exists():
            secret_env.write_text(placeholder_env(example.read_text("utf-8")), "utf-8")
        result = subprocess.run(
            [str(kustomize), "build", str(copy)], capture_output=True, text=True, check=False
        )
    if result.returncode != 0:
        raise SystemExit(f"kustomize build {directory} failed:\n{result.stderr}")
    return result.stdout


def placeholder_env(example: str) -> str:
    lines = []
    for line in example.splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith("#"):
            lines.append(f"{key}={value or 'placeholder-for-validation'}")
    return "\n".join(lines) + "\n"


class CustomResources:
    """Schemas of the custom resources, by (apiVersion, kind), from CRD manifests."""

    def __init__(self, crd_dir: Path) -> None:
        self.schemas: dict[tuple[str, str], dict[str, Any]] = {}
        for path in sorted(crd_dir.glob("*.yaml")):
            for crd in yaml.safe_load_all(path.read_text("utf-8")):
                if not crd or crd.get("kind") != "CustomResourceDefinition":
                    continue
                group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
                for version in crd["spec"]["versions"]:
                    schema = version["schema"]["openAPIV3Schema"]
                    self.schemas[(f"{group}/{version['name']}", kind)] = strict(schema)

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self.schemas

    def errors(self, body: dict[str, Any]) -> list[str]:
        schema = self.schemas[(body["apiVersion"], body["kind"])]
        validator = jsonschema.Draft7Validator(schema)
        return [
            f"{'.'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
            for error in sorted(validator.iter_errors(body), key=lambda e: list(e.path))
        ]


def strict(schema: Any) -> Any:
    """The schema with ``additionalProperties: false`` on every object that declares its
    properties and neither allows others nor preserves unknown fields."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    tightened = {key: strict(value) for key, value in schema.items()}
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        tightened["additionalProperties"] = False
    if "properties" in schema:  # property names are not schemas
        tightened["properties"] = {
            name: strict(value) for name, value in schema["properties"].items()
        }
    return tightened


def errors_of(document: Document, crds: CustomResources, kubernetes_version: str) -> list[str]:
    body = document.body
    if not isinstance(body.get("apiVersion"), str) or not isinstance(body.get("kind"), str):
        return ["no apiVersion or kind"]
    if (body["apiVersion"], body["kind"]) in crds:
        return crds.errors(body)
    try:
        kubernetes_validate.validate(body, kubernetes_version, strict=True)
    except kubernetes_validate.ValidationError as error:
        path = ".".join(str(p) for p in error.path) or "(root)"
        return [f"{path}: {error.message}"]
    except kubernetes_validate.SchemaNotFoundError as error:
        return [f"no schema: {error.message}"]
    return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", nargs="?", type=Path, default=Path(__file__).parent)
    parser.add_argument("--kustomize", type=Path, required=True)
    parser.add_argument("--crds", type=Path, required=True)
    parser.add_argument("--kubernetes-version", default=DEFAULT_KUBERNETES_VERSION)
    args = parser.parse_args(argv)

    crds = CustomResources(args.crds)
    if not crds.schemas:
        raise SystemExit(f"no CustomResourceDefinition under {args.crds}")
    directory: Path = args.directory.resolve()
    sources = [
        document
        for path in listed_manifests(directory)
        for document in load_documents(path.read_text("utf-8"), path.name)
    ]
    rendered = load_documents(render(args.kustomize, directory), "rendered")

    failures = [
        f"{document.label}: {error}"
        for document in [*sources, *rendered]
        for error in errors_of(document, crds, args.kubernetes_version)
    ]
    for failure in failures:
        print(f"INVALID {failure}")
    kinds = sorted({d.body.get("kind", "?") for d in rendered})
    verdict = "FAILED" if failures else "valid"
    print(
        f"{len(sources)} listed and {len(rendered)} rendered documents {verdict} against "
        f"Kubernetes {args.kubernetes_version} (kubernetes-validate "
        f"{kubernetes_validate.__version__}) and {len(crds.schemas)} CRD schema(s); "
        f"kinds: {', '.join(kinds)}"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
