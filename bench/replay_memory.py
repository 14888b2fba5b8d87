"""Memory of replaying one long course file, kept and peak, per event (tracemalloc).

``python bench/replay_memory.py [N ...]`` (default 10000 100000) writes a course file of N
events (a course opened, then risk reviews flagged and assessed over and over, one event in 50
malformed and so rejected, which is what a long course's state does not grow with) and replays
it three ways, each in a fresh child process:

* ``kept``: :func:`iptflow.engine.replay.replay_file` as before streaming, as the store and the
  pytest plugin still use it (the course's history, every timeline entry, every rejection);
* ``streaming``: ``replay_file(path, streaming=True)``, as ``iptflow replay --json`` runs it;
* ``streaming_text``: the same with the timeline rendered line by line into a spool, as
  ``iptflow replay`` without ``--json`` runs it.

It prints one JSON object per run: bytes still held after the replay (the result alive) and
the peak, both per event, as tracemalloc counts them (Python allocations only).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

MODES = ("kept", "streaming", "streaming_text")


def write_course(path: Path, events: int) -> None:
    start = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)

    def at(i: int) -> str:
        return (start + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%SZ")

    with path.open("w", encoding="utf-8") as out:
        out.write(json.dumps({"type": "course_opened", "at": at(0), "course_id": "long",
                              "protocol": "ipt-depression@1.0.0"}) + "\n")
        for i in range(1, events):
            if i % 50 == 0:
                event = {"type": "risk_flagged", "at": at(i), "reason": "x", "typo": True}
            elif i % 2:
                event = {"type": "risk_flagged", "at": at(i), "reason": "patient said so"}
            else:
                event = {"type": "risk_assessed", "at": at(i), "level": "low", "safety_plan": True}
            out.write(json.dumps(event) + "\n")


def measure(path: Path, mode: str, events: int) -> dict[str, object]:
    """In this process: replay ``path`` as ``mode`` says under tracemalloc."""
    from iptflow import default_registry
    from iptflow.cli.replay import entry_line
    from iptflow.engine.replay import Spool, replay_file

    registry = default_registry()
    registry.compile("ipt-depression@1.0.0")  # the shared compiled protocol is not per event
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    if mode == "kept":
        result = replay_file(path, registry)
        rendered = None
    else:
        rendered = Spool() if mode == "streaming_text" else None
        on_entry = (lambda e: rendered.append(entry_line(e))) if rendered is not None else None
        result = replay_file(path, registry, streaming=True, on_entry=on_entry)
    kept, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert result.accepted + len(result.rejected) == events
    return {"mode": mode, "events": events, "rejected": len(result.rejected),
            "history": len(result.course.history) if result.course else None,
            "kept_bytes_per_event": round((kept - before) / events, 1),
            "peak_bytes_per_event": round((peak - before) / events, 1)}


def main(sizes: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for events in sizes:
            path = Path(tmp) / f"long-{events}.jsonl"
            write_course(path, events)
            for mode in MODES:
                child = subprocess.run(
                    [sys.executable, __file__, "--child", str(path), mode, str(events)],
                    capture_output=True, text=True, check=True,
                )
                print(child.stdout.strip(), flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(measure(Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]))))
    else:
        main([int(n) for n in sys.argv[1:]] or [10_000, 100_000])
