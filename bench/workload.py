"""The courses the benchmarks replay: courses of the base protocol and of every adaptation.

Courses come from ``iptflow.generate.random_courses`` (seeded random courses of each compiled
protocol: mostly what a protocol-following clinician records, about 5% events the engine
rejects) when it is installed; otherwise from templates: the demo course and every course
file under tests/courses and examples/. Either way ``expect`` lines are dropped and
``expect_error`` keys taken off: the workload is a list of courses, each a list of raw event
dicts, with distinct course ids.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from iptflow.research.demo import demo_events

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_DIRS = (ROOT / "tests" / "courses", ROOT / "examples")
ADAPTATIONS = ("adolescent", "bipolar", "bulimia", "ptsd")

Course = list[dict[str, Any]]


def _from_file(path: Path) -> Course | None:
    events: Course = []
    try:
        for text in path.read_text(encoding="utf-8").splitlines():
            if not text.strip():
                continue
            data = json.loads(text)
            if not isinstance(data, dict) or "expect" in data:
                continue
            data.pop("expect_error", None)
            events.append(data)
    except (OSError, ValueError):
        return None
    if not events or events[0].get("type") != "course_opened":
        return None
    return events


def template_courses(n: int = 100) -> list[Course]:
    """Courses to repeat: ``n`` generated ones, or the demo course and the repository's files."""
    generated = _generated(n, seed=6)
    if generated is not None:
        return generated
    from iptflow import default_registry
    from iptflow.errors import IptflowError

    registry = default_registry()
    out = [demo_events("template")]
    for directory in TEMPLATE_DIRS:
        for path in sorted(directory.rglob("*.jsonl")) if directory.is_dir() else ():
            events = _from_file(path)
            if events is None:
                continue
            opened = events[0]
            try:  # only courses whose protocol this installation can resolve
                registry.compile(opened.get("protocol", ""), opened.get("adaptations", []))
            except (IptflowError, TypeError):
                continue
            out.append(events)
    return out


def _generated(n: int, seed: int, clean: bool = False) -> list[Course] | None:
    """``n`` random courses from iptflow.generate, spread over the base protocol and each
    adaptation (None when that module is not installed). ``clean``: leave out the events the
    engine rejects (they changed nothing, so the rest is accepted as it is)."""
    try:
        from iptflow.research.generate import random_courses
    except ImportError:
        return None
    from iptflow import default_registry

    registry = default_registry()
    groups = [[]] + [[a] for a in ADAPTATIONS]
    per = -(-n // len(groups))
    out: list[Course] = []
    for adaptations in groups:
        compiled = registry.compile("ipt-depression", adaptations)
        for generated in random_courses(compiled, per, seed):
            events = []
            for line in generated.lines:
                if "expect" in line:
                    continue
                event = dict(line)
                if event.pop("expect_error", None) is not None and clean:
                    continue
                events.append(event)
            out.append(events)
    # interleave the groups so any prefix of the workload has every adaptation
    return [out[g * per + i] for i in range(per) for g in range(len(groups))][:n]


def build(n: int, seed: int = 6, clean: bool = False) -> tuple[list[Course], str]:
    """``n`` courses (and where they came from), ids made distinct; ``clean`` as for
    :func:`_generated` (templates are used as they are)."""
    courses = _generated(n, seed, clean)
    source = f"iptflow.generate.random_courses (seed {seed})"
    if courses is None:
        templates = template_courses()
        courses = [templates[i % len(templates)] for i in range(n)]
        source = f"templates ({len(templates)}: demo course + repository course files)"
    out = []
    for i, course in enumerate(courses):
        first = dict(course[0])
        first["course_id"] = f"bench-{i:07d}"
        out.append([first, *course[1:]])
    return out, source


def describe(courses: list[Course]) -> dict[str, Any]:
    """How many courses and events, and the adaptations they cover."""
    seen: dict[str, int] = {}
    for course in courses:
        names = course[0].get("adaptations") or ["(base)"]
        for name in names:
            seen[name] = seen.get(name, 0) + 1
    return {
        "courses": len(courses),
        "events": sum(len(c) for c in courses),
        "adaptations": dict(sorted(seen.items())),
        "missing_adaptations": [a for a in ADAPTATIONS if a not in seen],
    }


def iter_lines(courses: list[Course]) -> Iterator[str]:
    for course in courses:
        for event in course:
            yield json.dumps(event, separators=(",", ":"))


def write_stream(path: Path, templates: list[Course], n: int) -> int:
    """Write ``n`` courses back to back into one JSON Lines file; return the bytes written."""
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            course = templates[i % len(templates)]
            first = dict(course[0], course_id=f"stream-{i:07d}")
            out.write(json.dumps(first, separators=(",", ":")) + "\n")
            for event in course[1:]:
                out.write(json.dumps(event, separators=(",", ":")) + "\n")
    return path.stat().st_size


def write_course_files(directory: Path, courses: list[Course]) -> list[Path]:
    """One course file per course (SPEC §6), as ``iptflow replay`` reads them."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for course in courses:
        path = directory / f"{course[0]['course_id']}.jsonl"
        path.write_text(
            "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in course), encoding="utf-8"
        )
        paths.append(path)
    return paths
