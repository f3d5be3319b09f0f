"""What every benchmark reports: each figure beside its baseline from the same run.

A benchmark script measures Gala and a baseline in one run (on one machine, at one
moment: the ratio means something where the absolute figures alone would not), then
calls :func:`report` with its :class:`Figure` rows. ``report`` prints them as a table
and, when ``GALA_BENCH_RESULTS`` names a file, appends them to it as one JSON line per
benchmark; ``make bench`` collects those lines and writes ``docs/benchmarks.md`` with
:func:`render` (``python -m gala.benchmarking render RESULTS OUT``).

A figure's goal is a ratio against its baseline (``goal_ratio``, e.g. "at least 0.7x
the baseline's throughput") or an absolute bound (``goal_value``, e.g. "p50 at most
50 ms"), as the issue that set it says; ``higher_is_better`` tells which way it points.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS_ENV = "GALA_BENCH_RESULTS"


@dataclass(frozen=True)
class Figure:
    """One measured figure, its baseline (same run) and its goal."""

    name: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    higher_is_better: bool = True
    goal_ratio: float | None = None
    """The least (higher is better) or most (lower is better) ``value / baseline``."""
    goal_value: float | None = None
    """The least or most ``value`` itself, in ``unit``."""
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        assert self.baseline is not None
        return self.value / self.baseline

    @property
    def goal(self) -> str:
        bound = "≥" if self.higher_is_better else "≤"
        parts = []
        if self.goal_ratio is not None:
            parts.append(f"{bound} {self.goal_ratio:g}x")
        if self.goal_value is not None:
            parts.append(f"{bound} {_number(self.goal_value)} {self.unit}")
        return ", ".join(parts) or "-"

    @property
    def met(self) -> bool | None:
        checks: list[bool] = []
        ratio = self.ratio
        if self.goal_ratio is not None and ratio is not None:
            checks.append(
                ratio >= self.goal_ratio if self.higher_is_better else ratio <= self.goal_ratio
            )
        if self.goal_value is not None:
            checks.append(
                self.value >= self.goal_value
                if self.higher_is_better
                else self.value <= self.goal_value
            )
        return all(checks) if checks else None


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": memory_gib,
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "store": os.environ.get("GALA_MONGO_URL", "mongodb://127.0.0.1:27017"),
    }


def report(benchmark: str, figures: Sequence[Figure], *, scale: str = "") -> None:
    """Print ``figures`` and append them to ``$GALA_BENCH_RESULTS`` if it is set."""
    print(f"\n== {benchmark}" + (f" ({scale})" if scale else ""))
    for row in _rows(figures):
        print("  " + " | ".join(row))
    target = os.environ.get(RESULTS_ENV)
    if target:
        entry = {
            "benchmark": benchmark,
            "scale": scale,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "script": _script(),
            "figures": [asdict(figure) for figure in figures],
        }
        with Path(target).open("a", encoding="utf-8") as results:
            results.write(json.dumps(entry) + "\n")


HEADER = ("figure", "measured", "baseline", "ratio", "goal", "met")


def _rows(figures: Iterable[Figure]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = [HEADER]
    for figure in figures:
        baseline = (
            f"{_number(figure.baseline)} {figure.unit} ({figure.baseline_name})"
            if figure.baseline is not None
            else "-"
        )
        ratio = f"{figure.ratio:.2f}x" if figure.ratio is not None else "-"
        met = {True: "yes", False: "NO", None: "-"}[figure.met]
        name = figure.name + (f" ({figure.note})" if figure.note else "")
        rows.append(
            (name, f"{_number(figure.value)} {figure.unit}", baseline, ratio, figure.goal, met)
        )
    return rows


def _script() -> str:
    """The running script's path from the repository's root (how bench.sh names it)."""
    path = Path(sys.argv[0]).resolve()
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.1f}"


def render(results: Path, out: Path) -> None:
    """Write ``out`` (Markdown) from the JSON lines in ``results``."""
    entries = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    facts = machine()
    commit = _commit()
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (do not edit by hand). Each figure is measured beside its",
        "baseline in the same run, on the machine below; the ratio is measured / baseline.",
        "",
        f"- machine: {facts['cpu']}, {facts['cores']} cores, {facts['memory_gib']} GiB,"
        f" {facts['system']}, Python {facts['python']}",
        f"- store: {_store_kind()}; commit: {commit}",
        f"- written: {datetime.now(UTC).isoformat(timespec='minutes')}",
        "",
    ]
    for entry in entries:
        figures = [Figure(**figure) for figure in entry["figures"]]
        title = entry["benchmark"] + (f" ({entry['scale']})" if entry["scale"] else "")
        lines += [f"## {title}", "", f"`{entry['script']}`, {entry['at']}", ""]
        rows = _rows(figures)
        lines.append("| " + " | ".join(rows[0]) + " |")
        lines.append("|" + "---|" * len(rows[0]))
        lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
        lines.append("")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))


def merge(results: Path, run: Path, scripts: Sequence[str]) -> None:
    """Replace in ``results`` the entries of ``scripts`` by those of this ``run``
    (a partial run keeps the other benchmarks' last figures), in the order they ran."""
    kept = []
    if results.exists():
        for line in results.read_text().splitlines():
            if line.strip() and json.loads(line)["script"] not in scripts:
                kept.append(line)
    fresh = [line for line in run.read_text().splitlines() if line.strip()] if run.exists() else []
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text("".join(line + "\n" for line in [*kept, *fresh]))


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _store_kind() -> str:
    """Which store answers at ``GALA_MONGO_URL`` (FerretDB says so in its buildInfo)."""
    url = os.environ.get("GALA_MONGO_URL", "mongodb://127.0.0.1:27017")
    try:
        from pymongo import MongoClient

        client: MongoClient[dict[str, Any]] = MongoClient(url, serverSelectionTimeoutMS=2000)
        try:
            info = client.admin.command("buildInfo")
        finally:
            client.close()
    except Exception as exc:
        return f"unknown ({type(exc).__name__})"
    if "ferretdbVersion" in info:
        return f"FerretDB {info['ferretdbVersion']} (SQLite, with deploy/local's patches)"
    return f"MongoDB {info.get('version', '?')}"


USAGE = """usage: python -m gala.benchmarking render RESULTS.jsonl OUT.md
       python -m gala.benchmarking merge RESULTS.jsonl RUN.jsonl SCRIPT..."""


def main(argv: Sequence[str]) -> int:
    if len(argv) == 3 and argv[0] == "render":
        render(Path(argv[1]), Path(argv[2]))
        return 0
    if len(argv) >= 3 and argv[0] == "merge":
        merge(Path(argv[1]), Path(argv[2]), argv[3:])
        return 0
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
