"""``Store.get`` before and after a change, in the same run (bench/RESULTS.md, snapshots).

    git archive <commit> iptflow | tar -x -C /tmp/before
    python bench/load_ab.py /tmp/before [PAIRS]

Alternates child processes importing ``iptflow`` from ``/tmp/before`` (``PYTHONPATH``) and
from this tree, PAIRS times (default 3). Each child builds the load_100 figure's stores (a
100-event course with its snapshot after the last event, one 9 events behind its snapshot,
one without snapshots) and the raw baseline, then takes rounds of best-of-N of every figure;
each ratio is to the raw ``SELECT body`` + ``json.loads`` of the same round. Best-of rather
than means: the figures are meant to be taken on a shared, loaded machine.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent


def _best(fn: Callable[[], Any], n: int) -> float:
    best = float("inf")
    for _ in range(n):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def child(rounds: int, n: int) -> dict[str, Any]:
    """One process's ratios (median over rounds) to the raw read."""
    sys.path.insert(0, str(BENCH))
    import baseline
    from store_figures import hundred_event_course

    import iptflow
    from iptflow.store import Store

    events = hundred_event_course()
    behind = hundred_event_course("load-behind")
    with tempfile.TemporaryDirectory(prefix="iptflow-ab-") as tmp:
        store = Store.open(Path(tmp) / "s.db")
        store.import_many([events, behind[:91]])
        with Store.open(Path(tmp) / "s.db", snapshot_every=0) as appender:
            for event in behind[91:]:
                appender.apply("load-behind", event)
        plain = Store.open(Path(tmp) / "p.db", snapshot_every=0)
        plain.import_many([events])
        raw = baseline.RawSQLite(Path(tmp) / "raw.db")
        raw.insert_many([baseline.row("load-100", s, e) for s, e in enumerate(events, start=1)])

        def read_history() -> None:
            for _event in store.get("load-100").history:
                pass

        figures: dict[str, Callable[[], Any]] = {
            "raw": lambda: raw.load("load-100"),
            "get": lambda: store.get("load-100"),
            "get_9_behind": lambda: store.get("load-behind"),
            "get_no_snapshot": lambda: plain.get("load-100"),
            "get_then_read_history": read_history,
        }
        ratios: dict[str, list[float]] = {k: [] for k in figures}
        for _ in range(rounds):
            times = {k: _best(fn, n) for k, fn in figures.items()}
            for k in figures:
                ratios[k].append(times[k] / times["raw"])
        store.close()
        plain.close()
        raw.close()
    return {"tree": str(Path(iptflow.__file__).parent.parent),
            **{k: statistics.median(v) for k, v in ratios.items() if k != "raw"}}


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        print(json.dumps(child(int(argv[1]), int(argv[2]))))
        return 0
    if not argv:
        print(__doc__)
        return 2
    before, pairs = argv[0], int(argv[1]) if len(argv) > 1 else 3
    runs: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
    for _ in range(pairs):
        for name in runs:
            env = dict(os.environ)
            if name == "before":
                env["PYTHONPATH"] = before
            out = subprocess.run([sys.executable, __file__, "--child", "9", "30"], env=env,
                                 cwd=tempfile.gettempdir(), capture_output=True, text=True,
                                 check=True)
            runs[name].append(json.loads(out.stdout))
    for name, results in runs.items():
        print(f"{name} ({results[0]['tree']}):")
        for key in (k for k in results[0] if k != "tree"):
            values = [r[key] for r in results]
            print(f"  {key:24s} {statistics.median(values):.2f} "
                  f"({min(values):.2f} - {max(values):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
