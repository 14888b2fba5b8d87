"""The report computed in SQL over the report tables equals the report computed from every
course's replayed facts; the tables are current after a simulation, and stale rows (an event
appended, a protocol migration, a copy) are refreshed; medians of odd and even counts."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from test_migration import AT, CHANGING, CLEAN, V2
from test_report import courses as known_courses

from iptflow.cli import cli
from iptflow.research.model import TrajectoryModel
from iptflow.research.report import PHASE_ORDER, build_report, stale_count
from iptflow.research.report_facts import replay_facts
from iptflow.research.simulate import SimulationSpec, simulate_cohort, write_chunk
from iptflow.store.api import Store
from iptflow.store.copying import copy_store
from iptflow.store.protocol_migration import apply_migration, plan_migration
from iptflow.store.report_tables import REPORT_TABLES, ReportRows

#: (protocol, adaptations, seed): every protocol version and adaptation the simulation runs
COHORTS = [
    ("ipt-depression@1.0.0", (), 1),
    ("ipt-depression@2.0.0", (), 2),
    ("ipt-depression", ("adolescent",), 3),
    ("ipt-depression", ("bipolar",), 4),
    ("ipt-depression", ("bulimia",), 5),
    ("ipt-depression", ("ptsd",), 6),
]


def replayed(store: Store) -> dict[str, ReportRows]:
    """Every course's facts, replayed from its stored events on its pinned protocol."""
    return {row.id: replay_facts([e.event for e in store.history(row.id)],
                                 store.protocols.compiled(row.fingerprint, row.id))
            for row in store.list()}


def expected_report(store: Store) -> dict[str, Any]:
    """The report's aggregates computed in Python from the replayed facts (as the report did
    before it used SQL)."""
    rows, facts = store.list(), replayed(store)
    n = len(rows)
    sessions = [r.sessions_held for r in rows]
    days: dict[str, list[float]] = defaultdict(list)
    traj: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    deviations: Counter[str] = Counter()
    outcomes: dict[str, Counter[str]] = defaultdict(Counter)
    instruments: dict[str, Counter[str]] = defaultdict(Counter)
    for row in rows:
        f = facts[row.id]
        status = row.outcome_status or "none"
        for phase, d in f.phase_days.items():
            days[phase].append(d)
        for phase, pct in f.trajectory.items():
            traj[status][phase].append(pct)
        deviations.update(f.deviations)
        group = "+".join([row.protocol_id, *row.adaptations])
        outcomes[group][status] += 1
        instruments[group][f.instrument or "none"] += 1

    def order(d: dict[str, Any]) -> list[tuple[str, Any]]:
        return sorted(d.items(), key=lambda kv: (PHASE_ORDER.index(kv[0]) if kv[0] in PHASE_ORDER
                                                 else len(PHASE_ORDER), kv[0]))

    return {
        "courses": n,
        "states": dict(sorted(Counter(r.state for r in rows).items())),
        "sessions": {
            "mean": round(statistics.fmean(sessions), 2) if sessions else None,
            "median": statistics.median(sessions) if sessions else None,
            "distribution": {str(k): v for k, v in sorted(Counter(sessions).items())},
        },
        "phase_days": {p: {"courses": len(v), "mean": round(statistics.fmean(v), 2),
                           "median": round(statistics.median(v), 2)} for p, v in order(days)},
        "deviations_per_100": {c: round(100 * k / n, 2) for c, k in sorted(deviations.items())},
        "outcomes": {g: dict(sorted(c.items())) for g, c in sorted(outcomes.items())},
        "outcome_instruments": {g: dict(sorted(c.items())) for g, c in sorted(instruments.items())},
        "trajectories": {s: {p: round(statistics.fmean(v), 2) for p, v in order(by)}
                         for s, by in sorted(traj.items())},
    }


def without_data(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k != "data"}


def stored_rows(store: Store) -> dict[str, ReportRows]:
    """The report tables' rows, per course, as :class:`ReportRows`."""
    rec = store.recorder
    out = {r["course_id"]: ReportRows(r["course_id"], r["seq"], r["fingerprint"], r["instrument"])
           for r in rec.rows("SELECT * FROM report_courses")}
    status = {r.id: r.outcome_status or "none" for r in store.list()}
    for r in rec.rows("SELECT * FROM report_phase_days"):
        out[r["course_id"]].phase_days[r["phase"]] = r["days"]
    for r in rec.rows("SELECT * FROM report_trajectories"):
        out[r["course_id"]].trajectory[r["phase"]] = r["pct"]
        out[r["course_id"]].status = r["status"]
    for course_id, rows in out.items():
        if not rows.trajectory:  # stored with the trajectory only
            rows.status = status[course_id]
    for r in rec.rows("SELECT * FROM report_deviations"):
        out[r["course_id"]].deviations[r["code"]] = r["n"]
    return out


def simulate(db: str | Path, protocol: str, adaptations: tuple[str, ...], n: int, seed: int) -> None:
    simulate_cohort(SimulationSpec(protocol, adaptations, n, seed, TrajectoryModel()), db,
                    chunk_size=7)


@pytest.fixture(scope="module")
def cohorts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("cohorts") / "cohorts.db"
    for protocol, adaptations, seed in COHORTS:
        simulate(db, protocol, adaptations, 25, seed)
    return db


def test_a_simulated_store_has_current_rows_equal_to_a_replay(cohorts: Path) -> None:
    with Store.open(cohorts) as store:
        assert stale_count(store) == 0  # written by the simulation: nothing to refresh
        assert stored_rows(store) == replayed(store)


def test_the_sql_report_equals_the_replayed_facts_on_every_protocol(cohorts: Path) -> None:
    with Store.open(cohorts) as store:
        report = build_report(store)
        assert without_data(report) == expected_report(store)
        assert report["data"]["label"] == "synthetic" and len(report["data"]["simulation_runs"]) == 6
        assert len(report["outcomes"]) == 5 and report["deviations_per_100"]
    with Store.open(cohorts, readonly=True) as store:
        assert build_report(store) == report


def test_stale_rows_after_an_appended_event_are_refreshed(tmp_path: Path) -> None:
    real, synthetic = known_courses()
    opened = [{"type": "course_opened", "at": "2025-01-06T09:00:00Z", "course_id": "e-open",
               "protocol": "ipt-depression"}]
    with Store.open(tmp_path / "s.db", clock=None) as store:
        store.import_many([*real, *synthetic, opened])
        assert stale_count(store) == 5  # imported: no report rows yet
        seen: list[int] = []
        first = build_report(store, progress=seen.append)
        assert sum(seen) == 5 and stale_count(store) == 0
        # the open course goes on: its rows are stale until the next report refreshes them
        assert store.apply("e-open", {"type": "measure_recorded", "at": "2025-01-08T09:00:00Z",
                                      "instrument": "phq9", "score": 12, "item9": 0}).ok
        assert stale_count(store) == 1
        seen.clear()
        again = build_report(store, progress=seen.append)
        assert sum(seen) == 1 and stale_count(store) == 0
        assert again["phase_days"]["assessment"] != first["phase_days"]["assessment"]
        assert first["outcome_instruments"]["ipt-depression"] == {"none": 1, "phq9": 3}
        assert again["outcome_instruments"]["ipt-depression"] == {"phq9": 4}
        assert without_data(again) == expected_report(store)


def test_a_read_only_store_reports_stale_courses_without_writing(tmp_path: Path) -> None:
    real, synthetic = known_courses()
    db = tmp_path / "ro.db"
    with Store.open(db, clock=None) as store:
        store.import_many(real + synthetic)
        written = build_report(store)
        # b-dropped's rows are stale now: its child rows are left out and it is replayed
        store.recorder.conn.execute("UPDATE report_courses SET seq = 1 WHERE course_id = 'b-dropped'")
        store.recorder.conn.commit()
    with Store.open(db, readonly=True) as store:
        assert stale_count(store) == 1
        assert build_report(store) == written
        assert stale_count(store) == 1  # nothing was written
    with Store.open(db) as store:
        assert build_report(store) == written
        assert stale_count(store) == 0


def test_a_protocol_migration_makes_rows_stale_and_the_report_follows(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    simulate(db, "ipt-depression@1.0.0", (), 6, 9)
    with Store.open(db) as store:
        store.import_many([CLEAN, CHANGING])
        build_report(store)
        assert stale_count(store) == 0
        moved = apply_migration(store, plan_migration(store, V2, ["a-clean", "b-changes"]),
                                actor="dr-a", at=AT, accept_changes=True)
        assert [o.outcome for o in moved.outcomes] == ["migrated", "migrated"]
        assert stale_count(store) == 2  # the course rows moved to another protocol and head
        report = build_report(store)
        assert stale_count(store) == 0
        assert without_data(report) == expected_report(store)
        assert stored_rows(store) == replayed(store)
        assert {r.fingerprint for r in stored_rows(store).values()} == {
            r.fingerprint for r in store.list()}


def test_medians_of_odd_and_even_counts(tmp_path: Path) -> None:
    real, synthetic = known_courses()
    with Store.open(tmp_path / "odd.db", clock=None) as store:
        store.import_many(real)  # sessions 12, 3, 0 (odd): the middle one, as an int
        odd = build_report(store)
        assert odd["sessions"]["median"] == 3 and isinstance(odd["sessions"]["median"], int)
        # 2 h, 2 h and 1 d in assessment: the middle one is 2 h
        assert odd["phase_days"]["assessment"] == {"courses": 3, "mean": 0.39, "median": 0.08}
        assert without_data(odd) == expected_report(store)
        store.import_many(synthetic)  # sessions 12, 3, 0, 0 (even): the mean of the middle two
        even = build_report(store)
        assert even["sessions"]["median"] == 1.5
        assert even["phase_days"]["assessment"]["median"] == 0.54  # (2 h + 1 d) / 2
        assert without_data(even) == expected_report(store)


def test_an_empty_store_reports_nothing(tmp_path: Path) -> None:
    with Store.open(tmp_path / "empty.db") as store:
        report = build_report(store)
    assert report["courses"] == 0 and report["states"] == {} and report["phase_days"] == {}
    assert report["sessions"] == {"mean": None, "median": None, "distribution": {}}


def test_the_sql_report_on_both_backends(store_url: str, tmp_path: Path) -> None:
    real, synthetic = known_courses()
    with Store.open(store_url, clock=None) as store:
        store.import_many(real + synthetic)
        spec = SimulationSpec("ipt-depression", ("bipolar",), 12, 5, TrajectoryModel())
        compiled = store.registry.compile(spec.protocol, spec.adaptations)
        write_chunk(store, compiled, spec, range(12))
        assert stale_count(store) == 4  # only the simulated ones have rows
        with Store.open(store_url, readonly=True) as reader:  # the 4 replayed in memory
            in_memory = build_report(reader)
        assert stale_count(store) == 4
        report = build_report(store)
        assert report == in_memory
        assert stale_count(store) == 0
        assert without_data(report) == expected_report(store)
        assert stored_rows(store) == replayed(store)
        tables = store.recorder.tables()
    assert set(REPORT_TABLES) <= tables
    with Store.open(store_url, readonly=True) as store:
        assert build_report(store) == report


def test_a_copied_store_recomputes_its_report_rows(cohorts: Path, tmp_path: Path) -> None:
    with Store.open(cohorts, readonly=True) as source, Store.open(tmp_path / "copy.db") as target:
        assert copy_store(source, target).ok
        report = build_report(source)
        assert stale_count(target) == target.count() == source.count()  # not carried
        assert build_report(target) == report
        assert stale_count(target) == 0


def test_a_store_without_report_tables_reports_read_only(tmp_path: Path) -> None:
    """A store written before m007, opened read-only: every course is replayed in memory."""
    real, synthetic = known_courses()
    db = tmp_path / "old.db"
    with Store.open(db, clock=None) as store:
        store.import_many(real + synthetic)
        report = build_report(store)
        conn = store.recorder.conn
        for table in reversed(REPORT_TABLES):
            conn.execute(f"DROP TABLE {table}")
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm007_report_tables'")
        conn.commit()
    with Store.open(db, readonly=True) as store:
        assert stale_count(store) == 4
        assert build_report(store) == report


def test_the_report_bench_runs(tmp_path: Path) -> None:
    """bench/report_figure.py smoke run (no timing asserted)."""
    script = Path(__file__).resolve().parent.parent / "bench" / "report_figure.py"
    out = subprocess.run(
        [sys.executable, str(script), "--courses", "20", "--rounds", "1", "--stale", "4",
         "--sim-courses", "4", "--workers", "1", "--db", str(tmp_path / "b.db"), "--json"],
        capture_output=True, text=True, check=True, timeout=300)
    result = json.loads(out.stdout)
    assert result["courses"] == 20 and result["stale"] == 4
    assert {"current_s", "refresh_s", "simulate_ratio"} <= set(result)


def test_the_report_command_stores_stale_rows_unless_read_only(tmp_path: Path) -> None:
    """``iptflow report`` refreshes stale rows in the store; with ``--read-only`` it stores
    nothing and prints the same report; a store with nothing stale is not written to."""
    real, synthetic = known_courses()
    db = tmp_path / "s.db"
    with Store.open(db, clock=None) as store:
        store.import_many(real + synthetic)
        assert stale_count(store) == 4
    runner = CliRunner()
    read_only = runner.invoke(cli, ["report", "--db", str(db), "--json", "--read-only"])
    assert read_only.exit_code == 0, read_only.output
    with Store.open(db, readonly=True) as store:
        assert stale_count(store) == 4
    stored = runner.invoke(cli, ["report", "--db", str(db), "--json"])
    assert stored.exit_code == 0, stored.output
    assert json.loads(stored.output) == json.loads(read_only.output)
    with Store.open(db, readonly=True) as store:
        assert stale_count(store) == 0
    with Store.open(db) as store:  # checkpointed: what follows would show in the file
        store.recorder.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    current = db.read_bytes()
    again = runner.invoke(cli, ["report", "--db", str(db), "--json"])
    assert again.exit_code == 0 and json.loads(again.output) == json.loads(stored.output)
    assert db.read_bytes() == current
    wal = Path(f"{db}-wal")
    assert not wal.exists() or wal.stat().st_size == 0
