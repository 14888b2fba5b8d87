"""Migrations: on an empty database, and on a database created by the first migration alone."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlite_utils import Database
from store_support import opened

from iptflow.research.demo import demo_events
from iptflow.store.api import Store
from iptflow.store.migrations import migrations


def _applied(path: Path) -> list[str]:
    db = Database(path)
    try:
        return [m.name for m in migrations.applied(db)]
    finally:
        db.close()


def test_migrations_on_an_empty_database(tmp_path: Path):
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()  # an existing, empty SQLite file
    with Store.open(path) as store:
        tables = set(store.db.table_names())
        assert {"protocols", "courses", "events", "course_adaptations", "simulation_runs"} <= tables
        assert store.db["events"].pks == ["course_id", "seq"]
        assert {fk.other_table for fk in store.db["events"].foreign_keys} == {"courses"}
        assert store.open_course(opened()).ok
    names = _applied(path)
    assert names == ["m001_core_tables", "m002_course_filters", "m003_simulation_runs",
                     "m004_course_migrations", "m005_tokens",
                     "m006_snapshots", "m007_report_tables"]
    with Store.open(path) as store:  # opening again applies nothing twice
        assert store.count() == 1
    assert _applied(path) == names


def test_migrations_on_a_database_created_by_the_first_migration_alone(tmp_path: Path):
    full = tmp_path / "full.db"
    with Store.open(full) as store:
        store.import_many([demo_events("plain-1")])
        teen = opened("teen-1", adaptations=["adolescent"], patient={"age": 15})
        assert store.open_course(teen).ok

    old = tmp_path / "old.db"
    db = Database(old)
    migrations.apply(db, stop_before="m002_course_filters")
    assert [m.name for m in migrations.applied(db)] == ["m001_core_tables"]
    assert "course_adaptations" not in db.table_names()
    # the rows an iptflow with only the first migration wrote
    db.execute("ATTACH DATABASE ? AS full", [str(full)])
    with db.atomic():
        for table in ("protocols", "courses", "events"):
            db.execute(f"INSERT INTO main.{table} SELECT * FROM full.{table}")
    db.execute("DETACH DATABASE full")
    db.close()

    with Store.open(old) as store:
        assert _applied(old) == ["m001_core_tables", "m002_course_filters",
                                 "m003_simulation_runs", "m004_course_migrations", "m005_tokens",
                                 "m006_snapshots", "m007_report_tables"]
        assert [r.id for r in store.list(adaptation="adolescent")] == ["teen-1"]
        assert [r.id for r in store.list(state="completed")] == ["plain-1"]
        assert store.get("plain-1").sessions_held == 12
        assert store.verify().ok
        assert store.apply("teen-1", {"type": "guardian_consent_recorded",
                                      "at": "2025-01-07T09:00:00Z"}).ok
