"""The benchmarks' report: figures beside baselines, goals judged, Markdown from JSON lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gala import benchmarking
from gala.benchmarking import Figure, merge, render, report


def test_a_ratio_goal_is_judged_in_the_direction_the_figure_points() -> None:
    faster = Figure("req/s", 700, "/s", baseline=1000, goal_ratio=0.7)
    slower = Figure("req/s", 690, "/s", baseline=1000, goal_ratio=0.7)
    latency = Figure("p50", 1.4, "s", baseline=1.0, higher_is_better=False, goal_ratio=1.5)
    assert faster.ratio == pytest.approx(0.7)
    assert (faster.met, slower.met, latency.met) == (True, False, True)
    assert latency.goal == "≤ 1.5x"


def test_an_absolute_goal_needs_no_baseline_and_no_goal_judges_nothing() -> None:
    board = Figure("board p50", 12.0, "ms", higher_is_better=False, goal_value=50)
    assert (board.ratio, board.met, board.goal) == (None, True, "≤ 50 ms")
    assert Figure("p99", 3.0, "ms").met is None


def test_report_appends_one_json_line_and_render_writes_every_figure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results.jsonl"
    monkeypatch.setenv(benchmarking.RESULTS_ENV, str(results))
    report("HTTP path", [Figure("gateway / direct", 800, "/s", baseline=1000, goal_ratio=0.7)])
    report("Board", [Figure("board p50", 80.0, "ms", higher_is_better=False, goal_value=50)])
    printed = capsys.readouterr().out
    assert "gateway / direct" in printed and "0.80x" in printed
    entries = [json.loads(line) for line in results.read_text().splitlines()]
    assert [entry["benchmark"] for entry in entries] == ["HTTP path", "Board"]

    out = tmp_path / "docs" / "benchmarks.md"
    render(results, out)
    text = out.read_text()
    assert "## HTTP path" in text and "## Board" in text
    assert "| gateway / direct | 800 /s | 1,000 /s () | 0.80x | ≥ 0.7x | yes |" in text
    assert "| board p50 | 80 ms | - | - | ≤ 50 ms | NO |" in text
    assert "cores" in text


def test_merge_replaces_only_the_benchmarks_that_ran(tmp_path: Path) -> None:
    results, run = tmp_path / "all.jsonl", tmp_path / "run.jsonl"
    old = [{"script": "a.py", "n": 1}, {"script": "b.py", "n": 1}]
    results.write_text("".join(json.dumps(entry) + "\n" for entry in old))
    run.write_text(json.dumps({"script": "b.py", "n": 2}) + "\n")
    merge(results, run, ["b.py"])
    entries = [json.loads(line) for line in results.read_text().splitlines()]
    assert entries == [{"script": "a.py", "n": 1}, {"script": "b.py", "n": 2}]
