"""The benchmark suite runs (bench/run.py --quick --json) and reports every figure.

A smoke test: it checks the shape of the report, never a timing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIGURES = [
    "replay",
    "replay_files",
    "course_setup",
    "durable_append_full",
    "durable_append_normal",
    "bulk_import",
    "load_100",
    "simulate_1",
    "simulate_2",
    "memory",
]


def _check_figure(name: str, fig: dict) -> None:
    if "not_available" in fig:
        reason = fig["not_available"]
        assert isinstance(reason, str) and reason, name
        assert not reason.startswith("failed:"), f"{name}: {reason}"
        return
    assert fig["rounds"] >= 2, name
    for part in ("subject", "baseline", "ratio"):
        stats = fig[part]
        assert set(stats) == {"median", "min", "max"}, (name, part)
        assert all(isinstance(v, (int, float)) and v > 0 for v in stats.values()), (name, part, stats)
        assert stats["min"] <= stats["median"] <= stats["max"], (name, part, stats)
    assert isinstance(fig["unit"], str) and fig["unit"], name
    assert isinstance(fig["baseline_name"], str) and fig["baseline_name"], name
    if fig["target"] is not None:
        assert isinstance(fig["met"], bool), name


def test_quick_run_reports_every_figure_with_a_baseline_and_a_ratio():
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["settings"]["mode"] == "quick"
    assert report["machine"]["cores"] >= 1 and report["machine"]["sqlite"]
    assert report["machine"]["packages"]["iptflow"]
    for name in FIGURES:
        assert name in report, name
        fig = report[name]
        if name == "course_setup" and "not_available" not in fig:
            assert set(fig) == {"time", "memory"}
            for part in fig.values():
                _check_figure(name, part)
        else:
            _check_figure(name, fig)
    replay = report["replay"]
    assert replay["workload"]["missing_adaptations"] == []
    assert replay["workload"]["events"] > replay["workload"]["courses"] > 0


def test_bench_files_are_not_collected_as_tests():
    assert not list((ROOT / "bench").glob("test_*.py"))
    assert not list((ROOT / "bench").glob("*_test.py"))


def test_only_runs_the_named_figures_and_refuses_unknown_ones():
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--json", "--only", "course_setup"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert set(report) == {"machine", "settings", "course_setup"}
    bad = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--only", "nonsense"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2
    assert "unknown figure(s): nonsense" in bad.stderr
