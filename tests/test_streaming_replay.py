"""Streaming replay (``iptflow replay``): one course's memory does not grow with what was
already reported. Structural checks only (no timing or memory figures; bench/replay_memory.py
measures those): no history, no timeline entries, rejections in a spool; the same output as a
replay that keeps everything; undo after a plugin failure still works."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner

import iptflow
from iptflow import Registry
from iptflow.cli import cli
from iptflow.cli.replay import render_timeline
from iptflow.engine.plugins import make_plugin_manager
from iptflow.engine.replay import Spool, replay_file
from iptflow.errors import PluginError

ROOT = Path(__file__).resolve().parent.parent
COURSES = ROOT / "tests" / "courses"
START = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)


def _long_course(path: Path, events: int) -> Path:
    """A course of ``events`` events: risk reviews flagged and assessed, every 50th malformed."""
    lines = [{"type": "course_opened", "at": "2025-01-06T09:00:00Z", "course_id": "long",
              "protocol": "ipt-depression@1.0.0"}]
    for i in range(1, events):
        at = (START + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        if i % 50 == 0:
            lines.append({"type": "risk_flagged", "at": at, "reason": "x", "typo": True})
        elif i % 2:
            lines.append({"type": "risk_flagged", "at": at, "reason": "said so"})
        else:
            lines.append({"type": "risk_assessed", "at": at, "level": "low", "safety_plan": True})
    path.write_text("".join(json.dumps(e) + "\n" for e in lines), encoding="utf-8")
    return path


def test_a_streaming_replay_keeps_no_per_event_objects(tmp_path: Path) -> None:
    path = _long_course(tmp_path / "long.jsonl", 2_000)
    entries = []
    result = replay_file(path, streaming=True, on_entry=entries.append)
    assert result.course is not None and result.course.history == []
    assert result.timeline == []  # the entries went to on_entry, one per line
    assert len(entries) == 2_000 and entries[-1].line == 2_000
    assert isinstance(result.rejected, Spool) and len(result.rejected) == 39
    assert result.course.facts.event_counts[("risk_assessed", "assessment")] == 960
    kept = replay_file(path)  # what the store and the pytest plugin use: everything kept
    assert len(kept.course.history) == result.accepted == 1_961
    assert result.to_dict() == kept.to_dict()
    assert result.course.snapshot() == kept.course.snapshot()


@pytest.mark.parametrize("path", sorted(COURSES.rglob("*.jsonl")), ids=lambda p: p.stem)
def test_replay_prints_what_a_replay_keeping_everything_prints(path: Path) -> None:
    kept = replay_file(path)
    streamed = replay_file(path, streaming=True)
    text = "".join(streamed.json_chunks())
    assert json.loads(text) == kept.to_dict()
    assert text == json.dumps(kept.to_dict(), ensure_ascii=False)
    out = CliRunner().invoke(cli, ["replay", str(path), "--json"])
    assert out.stdout == text + "\n"


def test_a_spool_moves_to_a_file_and_gives_back_what_it_got() -> None:
    spool = Spool()
    items = [{"line": i, "message": "x" * 300 + "\ud800"} for i in range(5_000)]  # > 1 MiB
    for item in items:
        spool.append(item)
    assert spool._file._rolled  # past 1 MiB: on disk, not in memory
    assert len(spool) == 5_000 and spool[4_999] == items[-1] and spool == items


def test_a_plugin_failing_in_a_streaming_replay_still_leaves_the_course_as_it_was(
    tmp_path: Path,
) -> None:
    path = _long_course(tmp_path / "long.jsonl", 300)
    seen: list[tuple[Any, dict[str, Any]]] = []

    def event_accepted(course: Any, event: Any, result: Any) -> None:
        if result.seq == 200:
            raise RuntimeError("the audit trail is down")
        seen.append((course, course.snapshot()))

    plugin = SimpleNamespace(event_accepted=iptflow.hookimpl(event_accepted))
    pm, _ = make_plugin_manager(extra={"audit": plugin})
    with pytest.raises(PluginError, match="audit"):
        replay_file(path, Registry(pm), streaming=True)
    course, before = seen[-1]  # the last event accepted before the failure
    assert course.snapshot() == before and course.seq == 199
    assert course.history == []  # rebuilt by reading the file again, not from a history


def test_replay_text_output_is_unchanged_by_streaming(tmp_path: Path) -> None:
    path = COURSES / "base" / "deviations.course.jsonl"
    out = CliRunner().invoke(cli, ["replay", str(path)])
    assert out.stdout == render_timeline(replay_file(path)) + "\n"
