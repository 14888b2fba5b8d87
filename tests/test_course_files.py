"""The hand-written course files under tests/courses/.

Each file is collected and replayed as its own test item by iptflow's pytest plugin
(``iptflow.testing``, the ``pytest11`` entry point), which fails with the line and message of
every unmet expectation; this module checks what the plugin cannot: that the set is complete.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

COURSES = Path(__file__).resolve().parent / "courses"
FILES = sorted(COURSES.rglob("*.course.jsonl"))


def test_the_base_course_files_are_there() -> None:
    base = [f for f in FILES if f.parent.name == "base"]
    assert len(base) >= 12


def test_every_adaptation_has_course_files() -> None:
    folders = {f.parent.name for f in FILES}
    assert {"base", "adolescent", "bipolar", "bulimia", "ptsd"} <= folders


def test_the_plugin_collects_every_course_file() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", str(COURSES)],
        capture_output=True, text=True, cwd=COURSES.parents[1], check=False,
    ).stdout
    collected = {line.split("::")[0] for line in out.splitlines() if line.endswith("::replay")}
    expected = {f.relative_to(COURSES.parents[1]).as_posix() for f in FILES}
    assert collected == expected
