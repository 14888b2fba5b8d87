"""``iptflow report`` over a store of simulated courses: SQL aggregates over the report tables.

    python bench/report_figure.py [--courses 10000] [--rounds 5] [--stale 1000] [--workers 2]
                                  [--db PATH] [--sim-courses 300] [--json]

Builds (or, with ``--db`` naming an existing store, reuses) a store of ``--courses`` simulated
courses of ipt-depression (``simulate_cohort``, ``--workers``; the simulation writes each
course's report rows as it goes). Then, in interleaved rounds:

* ``current``: ``build_report`` on the store as the simulation left it (every course's report
  rows current: the stale check and the SQL aggregates only);
* ``refresh``: the same after ``--stale`` courses' report rows were made stale (their
  ``report_courses.seq`` set to 0), so the report replays and rewrites them first; the
  per-course refresh cost is ``(refresh - current) / stale``, and ``every course stale`` (a
  copied store, or the report before it used SQL: it replayed every course) is extrapolated
  as ``current + courses * per-course refresh``;
* ``simulate``: ``write_chunk`` of ``--sim-courses`` new courses into a fresh store, with the
  report facts tracked and written (subject) and with tracking and writing replaced by no-ops
  (baseline, same run): the simulation's extra CPU cost per course (process time: wall
  time on this shared machine varied 2x between rounds).

Prints the medians (min - max); bench/RESULTS.md records runs. No verdict is asserted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from iptflow.engine.registry import default_registry
from iptflow.research import simulate as simulation
from iptflow.research.model import TrajectoryModel
from iptflow.research.report import build_report
from iptflow.store import Store

PROTOCOL = "ipt-depression"


def build(db: Path, courses: int, workers: int) -> float:
    """Simulate ``courses`` courses into ``db`` (unless it holds them); the seconds it took."""
    spec = simulation.SimulationSpec(PROTOCOL, (), courses, 1, TrajectoryModel())
    start = time.perf_counter()
    simulation.simulate_cohort(spec, db, workers=workers)
    return time.perf_counter() - start


def report_seconds(db: Path, stale: int) -> float:
    with Store.open(db, synchronous="NORMAL") as store:
        if stale:
            conn = store.recorder.conn
            conn.execute("UPDATE report_courses SET seq = 0 WHERE course_id IN "
                         "(SELECT id FROM courses ORDER BY id LIMIT ?)", (stale,))
            conn.commit()
        start = time.perf_counter()
        build_report(store)
        return time.perf_counter() - start


class _NoTracker:
    def __init__(self, *args: Any) -> None:
        pass

    def accepted(self, at: str) -> None:
        pass

    def rows(self) -> None:
        return None


def simulate_seconds(tmp: Path, n: int, seed: int, tracked: bool) -> float:
    """CPU seconds of ``write_chunk`` of ``n`` new courses into a fresh store (synchronous
    NORMAL, as the simulation opens it), with or without the report facts."""
    compiled = default_registry().compile(PROTOCOL)
    spec = simulation.SimulationSpec(PROTOCOL, (), n, seed, TrajectoryModel())
    saved = simulation.FactsTracker, simulation.write_report_rows
    if not tracked:
        simulation.FactsTracker = _NoTracker  # type: ignore[misc, assignment]
        simulation.write_report_rows = lambda *a, **k: None  # type: ignore[assignment]
    db = tmp / f"sim-{seed}-{int(tracked)}.db"
    try:
        with Store.open(db, synchronous="NORMAL", clock=None, cache_size=0) as store:
            start = time.process_time()  # CPU: the machine's other jobs add noise to wall time
            simulation.write_chunk(store, compiled, spec, range(n))
            return time.process_time() - start
    finally:
        simulation.FactsTracker, simulation.write_report_rows = saved
        db.unlink()


def summary(values: list[float], digits: int = 4) -> dict[str, float]:
    return {"median": round(statistics.median(values), digits), "min": round(min(values), digits),
            "max": round(max(values), digits)}


def measure(args: argparse.Namespace, db: Path, tmp: Path) -> dict[str, Any]:
    built = None
    if not db.exists():
        built = build(db, args.courses, args.workers)
    with Store.open(db) as store:
        courses = store.count()
    current, refresh, sim_on, sim_off = [], [], [], []
    for _ in range(args.rounds):
        current.append(report_seconds(db, 0))
        refresh.append(report_seconds(db, args.stale))
    for r in range(args.sim_rounds or args.rounds):
        sim_off.append(simulate_seconds(tmp, args.sim_courses, 1000 + r, False))
        sim_on.append(simulate_seconds(tmp, args.sim_courses, 1000 + r, True))
    per_course = [(f - c) / args.stale for f, c in zip(refresh, current, strict=True)]
    extra = [(on - off) / args.sim_courses for on, off in zip(sim_on, sim_off, strict=True)]
    return {
        "courses": courses,
        "simulate_s": round(built, 2) if built is not None else None,
        "current_s": summary(current),
        "refresh_s": summary(refresh),
        "stale": args.stale,
        "refresh_per_course_ms": summary([1000 * p for p in per_course], 3),
        "every_course_stale_s": round(statistics.median(current)
                                      + courses * statistics.median(per_course), 1),
        "simulate_ms_per_course": summary([1000 * s / args.sim_courses for s in sim_on], 3),
        "simulate_baseline_ms_per_course": summary([1000 * s / args.sim_courses for s in sim_off], 3),
        "simulate_extra_ms_per_course": summary([1000 * e for e in extra], 3),
        "simulate_ratio": summary([on / off for on, off in zip(sim_on, sim_off, strict=True)], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--courses", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--stale", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sim-courses", type=int, default=300)
    parser.add_argument("--sim-rounds", type=int, default=None,
                        help="simulation rounds (default: --rounds)")
    parser.add_argument("--db", type=Path, default=None, help="reuse (or build) this store")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "report.db"
        result = measure(args, db, Path(tmp))
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
        return
    for key, value in result.items():
        print(f"{key:<34} {value}")


if __name__ == "__main__":
    main()
