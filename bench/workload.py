"""The courses the benchmarks replay: courses of the base protocol and of every adaptation.

Courses come from ``iptflow.generate`` (the seeded course generator behind ``iptflow
simulate``) when it is installed; otherwise from templates: the demo course and every course
file under tests/courses and examples/ (their ``expect`` lines dropped, ``expect_error`` keys
taken off). Either way the workload is a list of courses, each a list of raw event dicts,
with distinct course ids.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from iptflow.demo import demo_events

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


def template_courses() -> list[Course]:
    """The demo course and every usable course file shipped in the repository."""
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


def _generated(n: int, seed: int) -> list[Course] | None:
    """Courses from iptflow.generate, if that module exists (None otherwise)."""
    try:
        from iptflow import generate
    except ImportError:
        return None
    fn = getattr(generate, "generate_courses", None)
    if fn is None:
        return None
    params = inspect.signature(fn).parameters
    per = max(1, n // (len(ADAPTATIONS) + 1))
    out: list[Course] = []
    for adaptations in [[]] + [[a] for a in ADAPTATIONS]:
        kwargs: dict[str, Any] = {}
        if "seed" in params:
            kwargs["seed"] = seed
        if "adaptations" in params:
            kwargs["adaptations"] = adaptations
        for course in fn(per, **kwargs):
            out.append([dict(e) for e in course])
    return out[:n] if len(out) >= n else None


def build(n: int, seed: int = 6) -> tuple[list[Course], str]:
    """``n`` courses (and where they came from), ids made distinct."""
    courses = _generated(n, seed)
    source = "iptflow.generate"
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
