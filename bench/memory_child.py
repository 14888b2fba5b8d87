"""Child process of the memory figure: replay the first N courses of a stream, report peak RSS.

``python bench/memory_child.py STREAM N`` reads STREAM (JSON Lines, courses back to back, each
starting with ``course_opened``) line by line, replays each course with iptflow's course-file
replay as soon as it is complete, keeps only counts, and prints one JSON object:
``{"courses", "accepted", "rejected", "seconds", "idle_rss_kb", "peak_rss_kb"}``.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

from iptflow import default_registry
from iptflow.engine.replay import Line, parse_line, replay_lines


def main(stream: Path, count: int) -> dict[str, float]:
    registry = default_registry()
    registry.compile("ipt-depression")
    idle = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    courses = accepted = rejected = 0
    pending: list[Line] = []

    def flush() -> None:
        nonlocal courses, accepted, rejected
        result = replay_lines(pending, "stream", registry)
        courses += 1
        accepted += result.accepted
        rejected += len(result.rejected)
        pending.clear()

    start = time.perf_counter()
    with stream.open(encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            line = parse_line(text, number, str(stream))
            if line is None:
                continue
            if line.event is not None and line.event.get("type") == "course_opened" and pending:
                flush()
                if courses == count:
                    break
            pending.append(line)
        else:
            if pending and courses < count:
                flush()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "courses": courses,
        "accepted": accepted,
        "rejected": rejected,
        "seconds": seconds,
        "idle_rss_kb": idle,
        "peak_rss_kb": peak,
    }


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]), int(sys.argv[2]))))
