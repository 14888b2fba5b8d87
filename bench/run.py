"""iptflow's benchmark suite: every figure against a baseline measured in the same run.

    python bench/run.py [--quick] [--json] [--only NAME ...]
    python bench/run.py --markdown REPORT.json     # a saved report as a Markdown table

Figures (keys of the ``--json`` object): replay, replay_files, course_setup,
durable_append_full, durable_append_normal, bulk_import, load_100, simulate_1, simulate_2,
memory; plus ``machine`` (what it ran on) and ``settings`` (sizes and rounds). A figure that
cannot be measured here is ``{"not_available": "why"}``. See bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import sys
import time
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import engine_figures  # noqa: E402
import store_figures  # noqa: E402
from harness import not_available  # noqa: E402

PACKAGES = ("iptflow", "pydantic", "pydantic-core", "transitions", "pluggy", "sqlite-utils", "click")

SIZES = {
    # name: (quick, full)
    "rounds": (3, 7),  # quick mode is a smoke run; a full run has >= 5 rounds per figure
    "replay_courses": (40, 2000),
    "replay_file_courses": (20, 500),
    "setup_courses": (200, 5000),
    "append_events": (20, 300),
    "import_courses": (20, 500),
    "load_rounds_inner": (5, 50),
    "simulate_courses": (20, 400),
    "memory_rounds": (2, 5),
    "simulate_rounds": (2, 5),
    "memory_small": (20, 10_000),
    "memory_large": (80, 100_000),
}


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "packages": versions,
    }


def figures(quick: bool) -> dict[str, Callable[[], dict[str, Any]]]:
    n = {k: v[0 if quick else 1] for k, v in SIZES.items()}
    rounds = n["rounds"]
    return {
        "replay": lambda: engine_figures.replay(rounds, n["replay_courses"]),
        "replay_files": lambda: engine_figures.replay_files(rounds, n["replay_file_courses"]),
        "course_setup": lambda: engine_figures.course_setup(rounds, n["setup_courses"]),
        "durable_append_full": lambda: store_figures.durable_append(rounds, n["append_events"], "FULL"),
        "durable_append_normal": lambda: store_figures.durable_append(
            rounds, n["append_events"] * 5, "NORMAL"
        ),
        "bulk_import": lambda: store_figures.bulk_import(rounds, n["import_courses"]),
        "load_100": lambda: store_figures.load(rounds, n["load_rounds_inner"]),
        "simulate_1": lambda: store_figures.simulate(n["simulate_rounds"], n["simulate_courses"], 1),
        "simulate_2": lambda: store_figures.simulate(n["simulate_rounds"], n["simulate_courses"], 2),
        "memory": lambda: engine_figures.memory(n["memory_rounds"], n["memory_small"], n["memory_large"]),
    }


def _fmt(stats: dict[str, float] | None) -> str:
    if not stats:
        return "-"
    return f"{_num(stats['median'])} ({_num(stats['min'])}-{_num(stats['max'])})"


def render(name: str, fig: dict[str, Any]) -> list[str]:
    if "not_available" in fig:
        return [f"{name:<24} not available: {fig['not_available']}"]
    if "unit" not in fig:  # a group of figures
        out = []
        for sub, value in fig.items():
            out += render(f"{name}.{sub}", value)
        return out
    met = {True: "met", False: "MISSED", None: ""}[fig.get("met")]
    line = (
        f"{name:<24} {_fmt(fig['subject'])} {fig['unit']}; baseline {_fmt(fig['baseline'])}; "
        f"ratio {_fmt(fig['ratio'])}"
    )
    if fig.get("target"):
        line += f"; target {fig['target']}: {met}"
    out = [line]
    for other, values in fig.get("also", {}).items():
        out.append(
            f"{'':<24} {other}: {_fmt(values['value'])} {fig['unit']}; ratio {_fmt(values['ratio'])}"
        )
    if fig.get("note"):
        out.append(f"{'':<24} ({fig['note']})")
    return out


def _num(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def _md(stats: dict[str, float] | None) -> str:
    if not stats:
        return "-"
    return f"{_num(stats['median'])} ({_num(stats['min'])} - {_num(stats['max'])})"


def markdown(report: dict[str, Any]) -> str:
    """The figures of a report as a Markdown table (for bench/RESULTS.md)."""
    rows = [
        "| figure | subject: median (min - max) | baseline: median (min - max) | ratio | target | met |",
        "|---|---|---|---|---|---|",
    ]

    def add(name: str, fig: dict[str, Any]) -> None:
        if "not_available" in fig:
            rows.append(f"| {name} | not available: {fig['not_available']} | | | | |")
            return
        if "unit" not in fig:
            for sub, value in fig.items():
                add(f"{name}.{sub}", value)
            return
        met = {True: "yes", False: "**no**", None: ""}[fig.get("met")]
        rows.append(
            f"| {name} | {_md(fig['subject'])} {fig['unit']} | {_md(fig['baseline'])} "
            f"({fig['baseline_name']}) | {_md(fig['ratio'])} | {fig.get('target') or ''} | {met} |"
        )
        for other, values in fig.get("also", {}).items():
            rows.append(
                f"| {name}: {other} | {_md(values['value'])} {fig['unit']} | | "
                f"{_md(values['ratio'])} | | |"
            )

    for name, fig in report.items():
        if name not in ("machine", "settings"):
            add(name, fig)
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run, seconds)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these figures")
    parser.add_argument(
        "--markdown", metavar="REPORT", help="print a saved --json report as a Markdown table and exit"
    )
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown(json.loads(Path(args.markdown).read_text(encoding="utf-8"))))
        return 0
    table = figures(args.quick)
    if args.only:
        unknown = sorted(set(args.only) - set(table))
        if unknown:
            parser.error(f"unknown figure(s): {', '.join(unknown)} (known: {', '.join(table)})")
    out: dict[str, Any] = {
        "machine": machine(),
        "settings": {
            "mode": "quick" if args.quick else "full",
            **{k: v[0 if args.quick else 1] for k, v in SIZES.items()},
        },
    }
    start = time.perf_counter()
    for name, fn in table.items():
        if args.only and name not in args.only:
            continue
        try:
            out[name] = fn()
        except Exception as exc:  # a figure that fails says so; the others still run
            out[name] = not_available(f"failed: {type(exc).__name__}: {exc}")
        if not args.json:
            print("\n".join(render(name, out[name])), flush=True)
    out["settings"]["seconds"] = round(time.perf_counter() - start, 1)
    if args.json:
        print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
