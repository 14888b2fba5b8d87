"""Bulk paths (issue 16, deliverable 4), measured by hand: ``python bench/bulk_paths.py [--quick]``.

* ``course import --batch N``: ``Store.import_course_files`` (one transaction for all files; also
  with ``workers=2``, ``--workers 2``: the files replayed in two forked processes),
  ``Store.import_course_file`` per file (``--batch 1``) and replaying the files without writing,
  each against reading the same files and one raw ``executemany`` of the same rows in one
  transaction (WAL, synchronous=FULL); rounds interleaved, a fresh database each.
* ``Store.apply`` with synchronous=NORMAL against one raw INSERT + COMMIT per event
  (``store_figures.durable_append``, the bench's own figure).

Prints one JSON object (medians of the rounds).
"""

from __future__ import annotations

import inspect
import json
import statistics
import sys
import tempfile
from pathlib import Path

import baseline
import store_figures
import workload
from harness import timed

from iptflow import default_registry
from iptflow.engine.replay import replay_file
from iptflow.store.api import Store


def import_batches(rounds: int, n_courses: int) -> dict[str, object]:
    courses = store_figures.clean_courses(n_courses)
    events = sum(len(c) for c in courses)
    registry = default_registry()
    with tempfile.TemporaryDirectory(prefix="iptflow-bench-") as tmp:
        root = Path(tmp)
        paths = workload.write_course_files(root / "files", courses)
        names = [str(p) for p in paths]
        count = iter(range(10_000))
        parallel = "workers" in inspect.signature(Store.import_course_files).parameters
        kinds = ("batch", "batch_2_workers", "per_file", "replay_only", "raw")
        seconds: dict[str, list[float]] = {k: [] for k in kinds if parallel or k != "batch_2_workers"}
        for r in range(rounds + 1):  # round 0 warms up
            stores = [Store.open(root / f"s{next(count)}.db", registry=registry) for _ in range(3)]
            raw = baseline.RawSQLite(root / f"r{next(count)}.db")
            runs = {
                "raw": lambda raw=raw: raw.insert_many(baseline.rows_of_files(paths)),
                "batch": lambda s=stores[0]: s.import_course_files(names),
                "batch_2_workers": lambda s=stores[2]: s.import_course_files(names, workers=2),
                "per_file": lambda s=stores[1]: [s.import_course_file(n) for n in names],
                "replay_only": lambda: [replay_file(n, registry) for n in names],
            }
            runs = {k: v for k, v in runs.items() if k in seconds}
            order = list(runs) if r % 2 else list(runs)[::-1]
            took = {k: timed(runs[k]) for k in order}
            for s in stores:
                s.close()
            raw.close()
            if r:
                for k, v in took.items():
                    seconds[k].append(v)
    med = {k: statistics.median(v) for k, v in seconds.items()}
    ratio = {k: round(statistics.median([a / b for a, b in zip(seconds[k], seconds["raw"], strict=True)]), 2)
             for k in seconds if k != "raw"}
    return {"files": len(paths), "events": events, "rounds": rounds,
            "us_per_event": {k: round(v / events * 1e6, 2) for k, v in med.items()},
            "ratio_to_raw_executemany": ratio}


def main() -> None:
    quick = "--quick" in sys.argv
    out = {"import_batches": import_batches(2 if quick else 7, 40 if quick else 400),
           "apply_normal": store_figures.durable_append(2 if quick else 5, 200 if quick else 2000, "NORMAL")}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
