"""Every course file under tests/courses/ (all subfolders) replays with exit status 0."""

from __future__ import annotations

from pathlib import Path

import pytest

from iptflow.cli.replay import render_timeline
from iptflow.replay import replay_file

COURSES = Path(__file__).resolve().parent / "courses"
FILES = sorted(COURSES.rglob("*.course.jsonl"))


def test_the_base_course_files_are_there():
    base = [f for f in FILES if f.parent.name == "base"]
    assert len(base) >= 12


@pytest.mark.parametrize("path", FILES, ids=[f.relative_to(COURSES).as_posix() for f in FILES])
def test_course_file_replays_with_exit_status_0(path):
    result = replay_file(path)
    assert result.exit_status == 0, render_timeline(result)
