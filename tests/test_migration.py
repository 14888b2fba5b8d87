"""Protocol migration checked by replay (docs/migration.md), on real SQLite stores: a store of
1.0.0 courses planned and moved to 2.0.0, the hash chain with migration records, stale plans,
reopening, no-ops, failing plugins and migrating back."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from store_support import db_content

import iptflow
from iptflow.engine.course import Course
from iptflow.engine.plugins import make_plugin_manager
from iptflow.engine.registry import Registry
from iptflow.engine.replay import replay_file
from iptflow.errors import PluginError, UnknownProtocol
from iptflow.protocol.models import RequirementDef, ResolvedProtocol
from iptflow.store import Store
from iptflow.store.errors import InvalidArgument
from iptflow.store.protocol_migration import (
    MigrationTarget,
    apply_migration,
    plan_migration,
)

COURSES = Path(__file__).parent / "courses"
V1, V2 = "ipt-depression@1.0.0", "ipt-depression@2.0.0"
AT = "2025-06-01T09:00:00Z"


def opened(course_id: str) -> dict[str, Any]:
    return {"type": "course_opened", "at": "2025-01-06T09:00:00Z", "course_id": course_id,
            "protocol": V1, "actor": "clin-1"}


def phq9(at: str, score: int, items: list[int] | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {"type": "measure_recorded", "at": at, "instrument": "phq9",
                             "score": score}
    if items is not None:
        event["items"] = items
    return event


#: clean under 2.0.0: the PHQ-9 gives item 9, so no review opens
CLEAN = [opened("a-clean"), phq9("2025-01-06T09:30:00Z", 19, [3, 3, 2, 2, 2, 2, 2, 3, 0]),
         {"type": "diagnosis_confirmed", "at": "2025-01-06T09:45:00Z",
          "diagnosis": "major_depressive_disorder"}]
#: changes under 2.0.0: a total above 0 without item 9 opens the suicide risk review there
CHANGING = [opened("b-changes"), phq9("2025-01-06T09:30:00Z", 18)]
#: diverges under 2.0.0: completed without ending_discussed (an adolescent course file)
DIVERGING = COURSES / "adolescent" / "complete.course.jsonl"


def _store(path: Path, registry: Registry | None = None) -> Store:
    store = Store.open(path, registry=registry)
    store.import_many([CLEAN, CHANGING, DIVERGING])
    return store


def _migrations(path: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT course_id, n, after_seq FROM course_migrations "
                            "ORDER BY course_id, n").fetchall()
    finally:
        conn.close()


def test_a_store_of_1_0_0_courses_is_planned_and_moved_to_2_0_0(tmp_path: Path) -> None:
    db = tmp_path / "clinic.db"
    with _store(db) as store:
        diverging_before = store.get("ipt-a-complete").snapshot()
        before = db_content(db)
        plan = plan_migration(store, V2)
        assert db_content(db) == before  # planning writes nothing
        kinds = {c.course_id: c.kind for c in plan.courses}
        assert kinds == {"a-clean": "clean", "b-changes": "changes", "ipt-a-complete": "diverges"}
        assert plan.counts() == {"clean": 1, "changes": 1, "diverges": 1, "current": 0,
                                 "unresolved": 0}
        changes = next(c for c in plan.courses if c.kind == "changes")
        assert {"field": "facts.open_reviews", "before": [], "after": ["risk"]} in changes.differences
        diverges = next(c for c in plan.courses if c.kind == "diverges")
        assert diverges.divergence is not None
        assert diverges.divergence["type"] == "course_completed"
        assert diverges.divergence["code"] == "guard_failed"
        assert "ending_discussed" in diverges.divergence["guards"]
        assert diverges.to_protocol is not None and diverges.to_protocol["adaptations"] == ["adolescent"]

        report = apply_migration(store, plan, actor="dr-a", at=AT, reason="clinic moves to 2.0.0")
        assert {o.plan.course_id: o.outcome for o in report.outcomes} == {
            "a-clean": "migrated", "b-changes": "stayed", "ipt-a-complete": "stayed"}
        assert store.get("a-clean").protocol.version == "2.0.0"
        assert store.get("b-changes").protocol.version == "1.0.0"
        assert store.get("ipt-a-complete").snapshot() == diverging_before
        [record] = store.migrations("a-clean")
        assert (record.after_seq, record.actor, record.at, record.reason, record.kind) == (
            3, "dr-a", AT, "clinic moves to 2.0.0", "clean")
        assert record.from_fingerprint == plan.courses[0].from_protocol["fingerprint"]
        assert record.to_fingerprint == store.row("a-clean").fingerprint

        accepted = apply_migration(store, plan_migration(store, V2), actor="dr-a", at=AT,
                                   accept_changes=True)
        assert {o.plan.course_id: o.outcome for o in accepted.outcomes} == {
            "a-clean": "current", "b-changes": "migrated", "ipt-a-complete": "stayed"}
        row = store.row("b-changes")
        assert (row.protocol_version, row.open_reviews, row.state) == ("2.0.0", ["risk"], "assessment")
        assert store.verify().ok
        assert [r.id for r in store.list(protocol=V2)] == ["a-clean", "b-changes"]
        # the migrated course goes on under 2.0.0: a 2.0 field is accepted now
        assert store.apply("a-clean", phq9("2025-01-07T09:00:00Z", 15) | {"item9": 0}).ok
        assert store.verify().ok


def test_tampered_migration_records_are_caught_by_verify(tmp_path: Path) -> None:
    db = tmp_path / "clinic.db"
    with _store(db) as store:
        apply_migration(store, plan_migration(store, V2, ["a-clean"]), actor="dr-a", at=AT)
        assert store.verify().ok
    conn = sqlite3.connect(db)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE course_migrations SET actor = 'mallory'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM course_migrations")
    conn.execute("DROP TRIGGER course_migrations_no_update")
    cases = [
        ("UPDATE course_migrations SET actor = 'mallory'", "columns"),
        ("UPDATE course_migrations SET body = replace(body, 'dr-a', 'mallory'), actor = 'mallory'",
         "hash"),
        ("UPDATE courses SET fingerprint = (SELECT from_fingerprint FROM course_migrations), "
         "protocol_version = '1.0.0' WHERE id = 'a-clean'", "course_row"),
    ]
    for sql, kind in cases:
        conn.execute(sql)
        conn.commit()
        with Store.open(db, readonly=True) as store:
            problems = store.verify().problems
        assert [(p.kind, p.course_id) for p in problems] == [(kind, "a-clean")], sql
        conn.close()
        conn = _restore(db, tmp_path)
    conn.close()


def _restore(db: Path, tmp_path: Path) -> sqlite3.Connection:
    """A fresh store like the one of the test above (each tampering starts from a sound one)."""
    db.unlink()
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    with _store(db) as store:
        apply_migration(store, plan_migration(store, V2, ["a-clean"]), actor="dr-a", at=AT)
    conn = sqlite3.connect(db)
    conn.execute("DROP TRIGGER course_migrations_no_update")
    return conn


def test_a_course_appended_to_between_plan_and_apply_is_planned_again(tmp_path: Path) -> None:
    with _store(tmp_path / "clinic.db") as store:
        plan = plan_migration(store, V2, ["a-clean", "b-changes"])
        assert [c.kind for c in plan.courses] == ["clean", "changes"]
        # a-clean gets a PHQ-9 total without item 9: under 2.0.0 it would now open a review
        assert store.apply("a-clean", phq9("2025-01-07T09:00:00Z", 12)).ok
        # b-changes gets a measure that keeps it as it was
        assert store.apply("b-changes", phq9("2025-01-07T09:00:00Z", 12)).ok
        report = apply_migration(store, plan, actor="dr-a", at=AT, accept_changes=False)
        by_id = {o.plan.course_id: o for o in report.outcomes}
        assert by_id["a-clean"].replanned and by_id["a-clean"].plan.kind == "changes"
        assert by_id["a-clean"].plan.seq == 4 and by_id["a-clean"].outcome == "stayed"
        assert store.get("a-clean").protocol.version == "1.0.0"
        assert by_id["b-changes"].replanned and by_id["b-changes"].outcome == "stayed"
        again = apply_migration(store, plan, actor="dr-a", at=AT, accept_changes=True)
        assert [o.outcome for o in again.outcomes] == ["migrated", "migrated"]
        assert [m.after_seq for m in store.migrations("a-clean")] == [4]  # the seq it was planned at
        assert store.verify().ok


def test_a_migrated_course_loads_identically_after_reopening(tmp_path: Path) -> None:
    db = tmp_path / "clinic.db"
    with _store(db) as store:
        apply_migration(store, plan_migration(store, V2), actor="dr-a", at=AT, accept_changes=True)
        live = store.get("b-changes").snapshot()
        exported = store.export_course_file("b-changes")
    with Store.open(db, readonly=True) as store:
        assert store.get("b-changes", verify=True).snapshot() == live
        assert store.verify().ok
    assert live["protocol"]["version"] == "2.0.0" and live["facts"]["open_reviews"] == ["risk"]
    under_v2 = Course.replay(CHANGING, compiled=Registry().compile(V2), notify=False)
    assert under_v2.snapshot() == live
    path = tmp_path / "b.jsonl"
    path.write_text(exported, encoding="utf-8")
    replayed = replay_file(path)
    assert replayed.exit_status == 0 and replayed.course is not None
    assert replayed.course.snapshot() == live  # the exported file names the protocol it runs on


def test_migrating_to_the_pinned_protocol_is_a_no_op(tmp_path: Path) -> None:
    db = tmp_path / "clinic.db"
    with _store(db) as store:
        plan = plan_migration(store, V1)
        assert {c.kind for c in plan.courses} == {"current"}
        before = db_content(db)
        report = apply_migration(store, plan, actor="dr-a", at=AT, accept_changes=True)
        assert {o.outcome for o in report.outcomes} == {"current"}
        assert db_content(db) == before
        assert _migrations(db) == []


def test_migrating_back_is_another_migration(tmp_path: Path) -> None:
    db = tmp_path / "clinic.db"
    with _store(db) as store:
        v1 = store.get("a-clean").snapshot()
        apply_migration(store, plan_migration(store, V2, ["a-clean"]), actor="dr-a", at=AT)
        back = plan_migration(store, V1, ["a-clean"])
        assert back.courses[0].kind == "clean"
        apply_migration(store, back, actor="dr-b", at="2025-06-02T09:00:00Z", reason="undo")
        assert store.get("a-clean").snapshot() == v1
        records = store.migrations("a-clean")
        assert [(r.n, r.after_seq, r.actor) for r in records] == [(1, 3, "dr-a"), (2, 3, "dr-b")]
        assert records[1].from_fingerprint == records[0].to_fingerprint
        assert records[1].to_fingerprint == records[0].from_fingerprint
        assert records[1].prev_hash == records[0].hash
        assert store.verify().ok


def _flaky_registry() -> Registry:
    def register_guards(register: Any) -> None:
        def flaky(course: Any, event: Any) -> str | None:
            if event.at >= datetime(2025, 2, 1, tzinfo=UTC):
                raise RuntimeError("the lab system is down")
            return None
        register("flaky_guard", flaky)

    plugin = ModuleType("flaky_plugin")
    plugin.register_guards = iptflow.hookimpl(register_guards)  # type: ignore[attr-defined]
    pm, _ = make_plugin_manager(extra={"flaky": plugin})
    return Registry(pm)


def _flaky_target(registry: Registry) -> ResolvedProtocol:
    """2.0.0 with a plugin's requirement on every measure (it raises for measures from February)."""
    base = registry.resolve(V2)
    transitions = [t.model_copy(update={"requires": [*t.requires, "flaky"]})
                   if t.event == "measure_recorded" else t for t in base.transitions]
    return base.model_copy(update={
        "requirements": {**base.requirements, "flaky": RequirementDef(guard="flaky_guard")},
        "transitions": transitions,
    })


def test_a_failing_plugin_during_migration_leaves_every_course_unchanged(tmp_path: Path) -> None:
    registry = _flaky_registry()
    db = tmp_path / "clinic.db"
    with _store(db, registry) as store:
        target = _flaky_target(registry)
        plan = plan_migration(store, target, ["a-clean", "b-changes"])
        assert [c.kind for c in plan.courses] == ["clean", "changes"]
        assert store.apply("b-changes", phq9("2025-02-03T09:00:00Z", 9)).ok  # after the plan
        before = db_content(db)
        with pytest.raises(PluginError, match="flaky") as info:
            apply_migration(store, plan, actor="dr-a", at=AT, accept_changes=True)
        assert info.value.code == "plugin_error"
        assert db_content(db) == before  # a-clean, planned clean, was not migrated either
        assert _migrations(db) == []
        with pytest.raises(PluginError):
            plan_migration(store, target)
        assert store.verify().ok


def test_targets_and_arguments(tmp_path: Path) -> None:
    with _store(tmp_path / "clinic.db") as store:
        with pytest.raises(UnknownProtocol):
            plan_migration(store, "ipt-depression@9.9.9")
        plan = plan_migration(store, MigrationTarget(protocol=V2, adaptations=("bipolar",)),
                              ["a-clean"])
        assert plan.courses[0].to_protocol["adaptations"] == ["bipolar"]  # type: ignore[index]
        for kwargs in ({"actor": ""}, {"actor": "dr-a", "at": "2025-06-01T09:00:00"},
                       {"actor": "dr-a", "at": "yesterday"}):
            with pytest.raises(InvalidArgument):
                apply_migration(store, plan, **kwargs)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument):
            MigrationTarget(protocol=V2, resolved=Registry().resolve(V2))
        assert _migrations(tmp_path / "clinic.db") == []
