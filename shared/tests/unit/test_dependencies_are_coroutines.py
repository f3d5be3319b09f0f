"""Every FastAPI dependency of Gala's HTTP code is a coroutine function.

FastAPI runs a dependency written as a plain ``def`` in a worker thread: a hop to the thread
pool and back on every request, for factories that only read an attribute and build an
object (measured: three such hops were a visible share of a contact GET). This reads the
source of every service, the gateway and the kernel, finds each ``Depends(name)`` and
checks that the function it names is ``async def``.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
SOURCES = [REPO / "shared/src", REPO / "gateway/src", *sorted(REPO.glob("services/*/src"))]


def _modules() -> list[tuple[Path, ast.Module]]:
    return [
        (path, ast.parse(path.read_text(), filename=str(path)))
        for root in SOURCES
        for path in sorted(root.rglob("*.py"))
    ]


def test_every_dependency_is_async() -> None:
    modules = _modules()
    kinds: dict[str, set[bool]] = {}
    for _, tree in modules:
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                kinds.setdefault(node.name, set()).add(isinstance(node, ast.AsyncFunctionDef))
    plain = []
    seen = 0
    for path, tree in modules:
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "Depends"
                and node.args
                and isinstance(node.args[0], ast.Name)
            ):
                continue
            name = node.args[0].id
            if name not in kinds:
                continue  # a class or something imported from a library
            seen += 1
            if False in kinds[name]:
                plain.append(f"{path.relative_to(REPO)}:{node.lineno} Depends({name})")
    assert seen > 20, "the scan found too few dependencies to be reading the code"
    assert not plain, "plain-def dependencies (a thread hop per request):\n" + "\n".join(plain)
