"""The worklist of a store of simulated courses in progress, computed in one pass.

    python bench/worklist_figure.py [--courses 1000] [--rounds 5] [--json]

Builds a store (SQLite, synchronous OFF, in a temporary directory) of ``--courses`` active
courses: simulated courses of ipt-depression and of its bipolar adaptation, each cut at the
clinic morning (``iptflow.research.clinic.clinic_snapshot``). Then, per round, times one
``Store.worklist(as_of)``: reading the course rows, loading every active course by replaying its
log under its pinned protocol, and deriving its agenda (engine items and every plugin's
``agenda_items``). Reports the median (min - max) over the rounds of the whole worklist in
seconds and per course in milliseconds, and the split between loading the courses and deriving
their agendas. Prints no verdict: bench/RESULTS.md records a run.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from iptflow.research.clinic import clinic_snapshot
from iptflow.store import Store

MORNING = "2025-04-01T08:00:00Z"


def build(db: Path, courses: int) -> int:
    """A store of ``courses`` active courses (three quarters base, a quarter bipolar)."""
    wanted = {(): courses - courses // 4, ("bipolar",): courses // 4}
    events: list[list[dict[str, Any]]] = []
    for adaptations, count in wanted.items():
        n = count * 4
        while True:
            found = clinic_snapshot("ipt-depression", n, MORNING, adaptations=adaptations, seed=7)
            if len(found) >= count:
                break
            n *= 2
        events += found[:count]
    with Store.open(db, synchronous="OFF", clock=None) as store:
        store.import_many(events, synthetic=True)
    return len(events)


def one_round(db: Path) -> dict[str, float]:
    with Store.open(db, readonly=True) as store:
        gc.collect()
        start = time.perf_counter()
        worklist = store.worklist(MORNING)
        total = time.perf_counter() - start
    with Store.open(db, readonly=True) as store:
        start = time.perf_counter()
        for row in store.list():
            store.get(row.id)
        load = time.perf_counter() - start
    return {"total_s": total, "load_s": load, "items": len(worklist.entries),
            "courses": worklist.courses}


def summary(values: list[float], digits: int = 4) -> dict[str, float]:
    return {"median": round(statistics.median(values), digits), "min": round(min(values), digits),
            "max": round(max(values), digits)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--courses", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "clinic.db"
        built = build(db, args.courses)
        rounds = [one_round(db) for _ in range(args.rounds)]
    total = [r["total_s"] for r in rounds]
    load = [r["load_s"] for r in rounds]
    report = {
        "courses": built,
        "active_courses_in_worklist": rounds[0]["courses"],
        "items": rounds[0]["items"],
        "rounds": args.rounds,
        "worklist_s": summary(total),
        "per_course_ms": summary([1000 * t / built for t in total], 3),
        "loading_s": summary(load),
        "agenda_share": round(1 - statistics.median(load) / statistics.median(total), 3),
        "python": sys.version.split()[0],
    }
    if args.json:
        print(json.dumps(report))
        return
    w, p = report["worklist_s"], report["per_course_ms"]
    print(f"worklist of {built} active courses ({report['items']} items), {args.rounds} rounds:")
    print(f"  {w['median']} s ({w['min']} - {w['max']}); {p['median']} ms/course "
          f"({p['min']} - {p['max']})")
    print(f"  loading the courses: {report['loading_s']['median']} s; deriving the agendas: "
          f"{report['agenda_share']:.0%} of the total")


if __name__ == "__main__":
    main()
