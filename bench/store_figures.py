"""Store figures (durable append, bulk import, load) and ``iptflow simulate``."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import baseline
import workload
from harness import compare, figure, not_available, stats, timed

from iptflow import Course, default_registry
from iptflow.engine.replay import replay_file
from iptflow.research.demo import demo_events


def _store_class() -> Any:
    if importlib.util.find_spec("iptflow.store") is None:
        return None
    from iptflow.store.api import Store

    return Store


def clean_courses(n: int) -> list[list[dict[str, Any]]]:
    """Workload courses whose every event the engine accepts (so every append writes)."""
    courses, _ = workload.build(n * 3, clean=True)
    registry = default_registry()
    out = []
    for events in courses:
        course, result = Course.try_open(events[0], registry)
        if course is not None and all(course.apply(e).ok for e in events[1:]):
            out.append(events)
        if len(out) == n:
            break
    return out


def durable_append(rounds: int, n_events: int, synchronous: str) -> dict[str, Any]:
    """One event per transaction through Store.apply against raw sqlite3, same pragmas."""
    store_cls = _store_class()
    if store_cls is None:
        return not_available("iptflow.store is not installed in this tree")
    templates = clean_courses(8)
    plan: list[tuple[int, int, int]] = []  # (course, template, index of the event to append)
    course = 0
    while len(plan) < n_events:
        ti = course % len(templates)
        plan += [(course, ti, i) for i in range(1, len(templates[ti]))]
        course += 1
    plan = plan[:n_events]
    used = sorted({(c, ti) for c, ti, _ in plan})
    with tempfile.TemporaryDirectory(prefix="iptflow-bench-") as tmp:
        store = store_cls.open(Path(tmp) / "store.db", synchronous=synchronous)
        raw = baseline.RawSQLite(Path(tmp) / "raw.db", synchronous)
        sql_store = store_cls.open(Path(tmp) / "sql.db", synchronous=synchronous)
        sql = baseline.StoreSQL(sql_store.conn)

        def name(r: int, c: int) -> str:
            return f"append-{r}-{c}"

        # open every round's courses up front: only appends are timed
        for r in range(rounds + 1):
            for c, ti in used:
                store.open_course(dict(templates[ti][0], course_id=name(r, c)))
                sql_store.open_course(dict(templates[ti][0], course_id=name(r, c)))
        round_of = {k: iter(range(rounds + 1)) for k in ("store", "raw", "sql")}

        def subject() -> None:
            r = next(round_of["store"])
            for c, ti, i in plan:
                result = store.apply(name(r, c), templates[ti][i])
                if not result.ok:
                    raise RuntimeError(f"store rejected a clean event: {result.code}")

        def base() -> None:
            r = next(round_of["raw"])
            for c, ti, i in plan:
                raw.append(name(r, c), i + 1, templates[ti][i])

        def store_sql() -> None:
            r = next(round_of["sql"])
            for c, ti, i in plan:
                sql.append(name(r, c), i + 1, templates[ti][i])

        # warm-up round (index 0 of both)
        subject()
        base()
        store_sql()
        fig = compare(
            rounds,
            subject,
            base,
            lambda seconds: seconds / n_events * 1e6,
            unit="us/event",
            baseline_name=f"raw sqlite3, one INSERT per transaction (WAL, synchronous={synchronous})",
            target=1.2,
            note=(
                f"{n_events} events, WAL, synchronous={synchronous}; also: the store's SQL alone "
                "(update the course row where it is at the seq known, insert the event) without "
                "the engine"
            ),
            also={"store_sql_without_engine": store_sql},
        )
        store.close()
        sql_store.close()
        raw.close()
    return fig


def bulk_import(rounds: int, n_courses: int) -> dict[str, Any]:
    """Events/s of Store.import_many(course files) against raw executemany of the same rows."""
    store_cls = _store_class()
    if store_cls is None:
        return not_available("iptflow.store is not installed in this tree")
    courses = clean_courses(n_courses)
    events = sum(len(c) for c in courses)
    with tempfile.TemporaryDirectory(prefix="iptflow-bench-") as tmp:
        root = Path(tmp)
        paths = workload.write_course_files(root / "files", courses)
        counter = iter(range(4 * rounds + 4))

        def fresh(kind: str) -> Path:
            return root / f"{kind}-{next(counter)}.db"

        stores: list[Any] = []
        raws: list[Any] = []

        def subject() -> None:
            store = stores.pop()
            store.import_many(paths)
            store.close()

        def base() -> None:
            raw = raws.pop()
            raw.insert_many(baseline.rows_of_files(paths))
            raw.close()

        def prepare() -> None:  # databases are created (migrated) outside the timed calls
            stores.append(store_cls.open(fresh("store")))
            raws.append(baseline.RawSQLite(fresh("raw")))

        registry = default_registry()

        def replay_only() -> None:  # the validation part of an import: replay, nothing written
            for path in paths:
                replay_file(path, registry)

        prepare()
        subject()
        base()
        subject_values: list[float] = []
        baseline_values: list[float] = []
        ratios: list[float] = []
        replays: list[tuple[float, float]] = []
        for r in range(rounds):
            prepare()
            order: list[tuple[str, Callable[[], None]]] = [("b", base), ("s", subject)]
            seconds = {k: timed(fn) for k, fn in (order if r % 2 == 0 else order[::-1])}
            seconds["v"] = timed(replay_only)
            subject_values.append(events / seconds["s"])
            baseline_values.append(events / seconds["b"])
            ratios.append(seconds["s"] / seconds["b"])
            replays.append((events / seconds["v"], seconds["v"] / seconds["b"]))
    return figure(
        unit="events/s",
        subject=subject_values,
        baseline=baseline_values,
        ratios=ratios,
        baseline_name="read files + json.loads + one executemany of the same rows, one transaction",
        target=1.5,
        note=(
            f"{len(paths)} course files, {events} events, WAL, synchronous=FULL; also: replaying "
            "the same files with the engine, nothing written (the validation an import does)"
        ),
        extra={
            "also": {
                "replay_only_no_store": {
                    "value": stats([v for v, _ in replays]),
                    "ratio": stats([r for _, r in replays]),
                }
            }
        },
    )


def hundred_event_course(course_id: str = "load-100") -> list[dict[str, Any]]:
    """A valid course of exactly 100 events: the demo course with extra measures in middle."""
    events = demo_events(course_id)
    at = next(i for i, e in enumerate(events) if e["type"] == "middle_phase_started")
    stamp = events[at]["at"]
    extra = [
        {"type": "measure_recorded", "at": stamp, "instrument": "phq9", "score": 13,
         "items": [2, 2, 2, 1, 2, 1, 2, 1, 0]}
        for _ in range(100 - len(events))
    ]
    return events[: at + 1] + extra + events[at + 1 :]


def load(rounds: int, inner: int) -> dict[str, Any]:
    """Time to load a 100-event course from the store (its snapshot, taken after its last event,
    plus the rows), against a raw select + json; also: 9 events behind its snapshot (the worst
    case of the default ``snapshot_every=10``), with no snapshot (a full replay), and a load
    whose history (decoded only when read) is then read through."""
    store_cls = _store_class()
    if store_cls is None:
        return not_available("iptflow.store is not installed in this tree")
    events = hundred_event_course()
    behind = hundred_event_course("load-behind")
    with tempfile.TemporaryDirectory(prefix="iptflow-bench-") as tmp:
        store = store_cls.open(Path(tmp) / "store.db")
        store.import_many([events, behind[:91]])
        with store_cls.open(Path(tmp) / "store.db", snapshot_every=0) as appender:
            for event in behind[91:]:  # 9 events after the snapshot taken at the import
                appender.apply("load-behind", event)
        plain = store_cls.open(Path(tmp) / "plain.db", snapshot_every=0)
        plain.import_many([events])
        raw = baseline.RawSQLite(Path(tmp) / "raw.db")
        raw.insert_many([baseline.row("load-100", s, e) for s, e in enumerate(events, start=1)])
        loaded = store.get("load-100")
        if loaded.seq != 100 or store.get("load-behind").seq != 100:
            raise RuntimeError(f"the 100-event course loaded with {loaded.seq} events")

        def subject() -> None:
            for _ in range(inner):
                store.get("load-100")

        def base() -> None:
            for _ in range(inner):
                raw.load("load-100")

        def nine_behind() -> None:
            for _ in range(inner):
                store.get("load-behind")

        def no_snapshot() -> None:
            for _ in range(inner):
                plain.get("load-100")

        def read_history() -> None:  # a caller that reads every event too (agenda, timeline)
            for _ in range(inner):
                for _event in store.get("load-100").history:
                    pass

        fig = compare(
            rounds,
            subject,
            base,
            lambda seconds: seconds / inner * 1e3,
            unit="ms/course",
            baseline_name="raw sqlite3 SELECT of the 100 bodies + json.loads",
            target=1.5,
            note=(
                "Store.get: read the rows, restore the course from its snapshot (its history "
                "decoded when read); also: the snapshot 9 events behind, a store without "
                "snapshots (replay of 100 events), and a get whose history is then read"
            ),
            also={"snapshot_9_behind": nine_behind, "no_snapshot_full_replay": no_snapshot,
                  "get_then_read_history": read_history},
        )
        store.close()
        plain.close()
        raw.close()
    return fig


def simulate(rounds: int, n_courses: int, workers: int) -> dict[str, Any]:
    """Courses/s of ``iptflow simulate`` (a fresh store each run) against a process that reads
    as many courses, parses and steps them with pydantic + a dict FSM, and writes their rows
    with one executemany."""
    if importlib.util.find_spec("iptflow.research.simulate") is None:
        return not_available("iptflow simulate is not in this tree (iptflow/research/simulate.py)")
    with tempfile.TemporaryDirectory(prefix="iptflow-bench-") as tmp:
        root = Path(tmp)
        counter = iter(range(4 * rounds + 4))
        stream = root / "courses.jsonl"
        workload.write_stream(stream, workload.build(n_courses, clean=True)[0], n_courses)

        def run() -> None:
            db = root / f"sim-{next(counter)}.db"
            args = [sys.executable, "-c", "from iptflow.cli import main; main()",
                    "simulate", "ipt-depression", "--n",
                    str(n_courses), "--seed", "6", "--db", str(db), "--workers", str(workers),
                    "--no-progress"]
            done = subprocess.run(args, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"iptflow simulate failed: {done.stderr.strip()[-300:]}")

        def base() -> None:
            db = root / f"base-{next(counter)}.db"
            code = (
                f"import sys, pathlib; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
                "import baseline; from iptflow import default_registry; "
                f"baseline.ingest(pathlib.Path({str(stream)!r}), pathlib.Path({str(db)!r}), "
                "default_registry())"
            )
            subprocess.run([sys.executable, "-c", code], check=True)

        try:
            run()
        except RuntimeError as exc:
            return not_available(str(exc))
        return compare(
            rounds,
            run,
            base,
            lambda seconds: n_courses / seconds,
            unit="courses/s",
            baseline_name="a process reading as many courses: pydantic + dict FSM + one executemany",
            higher_is_better=True,
            note=(
                f"{n_courses} courses of ipt-depression per run, --workers {workers}, a new store "
                "each run, process start included on both sides"
            ),
        )
