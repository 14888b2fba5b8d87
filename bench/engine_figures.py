"""Engine figures: replay throughput, course setup, memory while streaming courses."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import tracemalloc
from pathlib import Path
from typing import Any

import baseline
import workload
from harness import compare, figure, not_available, stats

from iptflow import Course, default_registry
from iptflow.engine.replay import replay_file


def _engine_replay(courses: list[list[dict[str, Any]]]) -> tuple[int, int]:
    registry = default_registry()
    accepted = rejected = 0
    for events in courses:
        course, result = Course.try_open(events[0], registry)
        if course is None:
            rejected += len(events)
            continue
        accepted += 1
        apply = course.apply
        for raw in events[1:]:
            if apply(raw).ok:
                accepted += 1
            else:
                rejected += 1
        course.outcome  # noqa: B018 - part of the work measured
    return accepted, rejected


def replay(rounds: int, n_courses: int) -> dict[str, Any]:
    """Events/s of Course.open/apply/outcome against pydantic + a dict FSM."""
    courses, source = workload.build(n_courses)
    registry = default_registry()
    events = sum(len(c) for c in courses)
    _engine_replay(courses[:50])  # warm caches (compiled protocols, validators)
    baseline.replay(courses[:50], registry)
    accepted = _engine_replay(courses)[0]
    return compare(
        rounds,
        lambda: _engine_replay(courses),
        lambda: baseline.replay(courses, registry),
        lambda seconds: events / seconds,
        unit="events/s",
        baseline_name="pydantic (same models) + dict FSM",
        target=3.0,
        note=f"workload from {source}; {accepted} of {events} events accepted by the engine",
        higher_is_better=True,
    ) | {"workload": workload.describe(courses)}


def replay_files(rounds: int, n_courses: int) -> dict[str, Any]:
    """Events/s of replaying course files (iptflow.replay) against json + pydantic + dict FSM."""
    courses, _ = workload.build(n_courses)
    registry = default_registry()
    events = sum(len(c) for c in courses)
    with tempfile.TemporaryDirectory(prefix="iptflow-bench-") as tmp:
        paths = workload.write_course_files(Path(tmp), courses)

        def subject() -> None:
            for path in paths:
                replay_file(path, registry)

        def base() -> None:
            baseline.replay(
                ([json.loads(line) for line in path.read_text().splitlines()] for path in paths),
                registry,
            )

        subject()
        return compare(
            rounds,
            subject,
            base,
            lambda seconds: events / seconds,
            unit="events/s",
            baseline_name="read + json.loads + pydantic + dict FSM",
            note=f"{len(paths)} course files, replay results (timeline, expectations) included",
        )


def course_setup(rounds: int, n: int) -> dict[str, Any]:
    """Per-course cost of opening a course (us and bytes) against parsing + a dict."""
    registry = default_registry()
    templates = workload.template_courses()
    openings = [
        dict(templates[i % len(templates)][0], course_id=f"setup-{i:06d}") for i in range(n)
    ]
    fsms: dict[tuple[str, tuple[str, ...]], baseline.DictFSM] = {}
    for raw in openings:
        key = (raw["protocol"], tuple(raw.get("adaptations", ())))
        if key not in fsms:
            fsms[key] = baseline.DictFSM(registry, key[0], list(key[1]))
    pairs = [(raw, fsms[(raw["protocol"], tuple(raw.get("adaptations", ())))]) for raw in openings]

    def subject() -> list[Any]:
        return [Course.try_open(raw, registry)[0] for raw in openings]

    def base() -> list[Any]:
        return [baseline.open_course(raw, fsm) for raw, fsm in pairs]

    subject()
    timing = compare(
        rounds,
        subject,
        base,
        lambda seconds: seconds / n * 1e6,
        unit="us/course",
        baseline_name="parse course_opened + dict",
        target=50,
        target_of="subject",
    )
    sizes: list[float] = []
    base_sizes: list[float] = []
    for _ in range(rounds):
        for fn, out in ((subject, sizes), (base, base_sizes)):
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            kept = fn()
            after = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
            out.append((after - before) / n)
            del kept
    memory = figure(
        unit="bytes/course",
        subject=sizes,
        baseline=base_sizes,
        ratios=[s / b for s, b in zip(sizes, base_sizes, strict=True)],
        baseline_name="parse course_opened + dict",
        target=4096,
        target_of="subject",
        note="tracemalloc: memory held by the opened courses (shared compiled protocols excluded)",
    )
    return {"time": timing, "memory": memory}


CHILD = Path(__file__).with_name("memory_child.py")


def _child(stream: Path, count: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, str(CHILD), str(stream), str(count)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"memory child failed: {out.stderr.strip()[-500:]}")
    return json.loads(out.stdout)


def memory(rounds: int, small: int, large: int) -> dict[str, Any]:
    """Peak RSS of a child replaying ``small`` then ``large`` courses streamed from one file."""
    templates = workload.template_courses()
    with tempfile.TemporaryDirectory(prefix="iptflow-bench-") as tmp:
        stream = Path(tmp) / "courses.jsonl"
        size = workload.write_stream(stream, templates, large)
        peaks_small: list[float] = []
        peaks_large: list[float] = []
        idle: list[float] = []
        rates: list[float] = []
        try:
            for _ in range(rounds):
                a = _child(stream, small)
                b = _child(stream, large)
                peaks_small.append(a["peak_rss_kb"] / 1024)
                peaks_large.append(b["peak_rss_kb"] / 1024)
                idle.append(b["idle_rss_kb"] / 1024)
                rates.append(b["courses"] / b["seconds"])
        except RuntimeError as exc:
            return not_available(str(exc))
    ratios = [b / a for a, b in zip(peaks_small, peaks_large, strict=True)]
    return figure(
        unit="MiB peak RSS",
        subject=peaks_large,
        baseline=peaks_small,
        ratios=ratios,
        baseline_name=f"the same child replaying {small} courses",
        target=1.1,
        note=(
            f"{large} courses ({size / 1e6:.0f} MB of JSON Lines) against {small}, streamed from "
            "one file in a child process (ru_maxrss); ratio = large/small, flat means ~1"
        ),
        extra={
            "courses": {"small": small, "large": large},
            "idle_rss_mib": stats(idle, 1),
            "courses_per_s": stats(rates, 0),
        },
    )

