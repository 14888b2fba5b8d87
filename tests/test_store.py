"""The durable store: writing, reading, rejections, idempotency, conflicts, tamper evidence and
protocol pinning, on real SQLite files and on a real PostgreSQL server (``store_url``,
tests/conftest.py): every test taking ``db`` runs on both backends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pg_support import INTEGRITY_ERRORS, drop_trigger, execute, is_pg
from store_support import course_with_deviations, db_content, measure_for_seq, opened

from iptflow import Course, ProtocolDef, Registry, hookimpl
from iptflow.engine.plugins import make_plugin_manager
from iptflow.engine.replay import replay_file
from iptflow.errors import EventRejected, UnknownProtocol
from iptflow.protocol.models import SessionRange
from iptflow.research.demo import demo_events
from iptflow.store import DamagedStore
from iptflow.store.api import (
    CorruptCourse,
    CourseExists,
    IdempotencyKeyReused,
    ImportRefused,
    MissingProtocol,
    NoDatabase,
    Store,
    StoreError,
    UnknownCourse,
)

COURSES = Path(__file__).parent / "courses"


@pytest.fixture
def db(store_url: str) -> str:
    """The store's location: a SQLite file, then a PostgreSQL schema (conftest.py)."""
    return store_url


@pytest.fixture
def store(db: str):
    with Store.open(db) as s:
        yield s


def _fill(store: Store, events: list[dict]) -> None:
    assert store.open_course(events[0]).ok
    for event in events[1:]:
        result = store.apply(events[0]["course_id"], event)
        assert result.ok, result


def test_a_course_written_event_by_event_loads_as_the_engine_builds_it(store: Store, db: str):
    events = demo_events("c-001")
    _fill(store, events)
    expected = Course.replay(events)
    with Store.open(db) as other:  # a second connection: nothing comes from a cache
        loaded = other.get("c-001")
        assert loaded.snapshot() == expected.snapshot()
        row = other.row("c-001")
    assert (row.state, row.last_seq, row.sessions_held, row.outcome_status) == (
        "completed", len(events), 12, "remission"
    )
    assert row.created_at == events[0]["at"] and row.updated_at == events[-1]["at"]
    assert row.fingerprint == expected.protocol.fingerprint
    history = store.history("c-001")
    assert [h.seq for h in history] == list(range(1, len(events) + 1))
    assert [h.event for h in history] == events
    assert history[0].prev_hash == row.fingerprint
    assert all(b.prev_hash == a.hash for a, b in zip(history, history[1:], strict=False))
    assert history[0].actor == "clinician-7" and history[0].recorded_at


def test_every_kind_of_rejection_leaves_the_database_unchanged(store: Store, db: str):
    _fill(store, [opened(), measure_for_seq(2), measure_for_seq(3)])
    closed = demo_events("closed-1")
    _fill(store, closed)
    before = db_content(db)
    attempts = [
        ("c-001", {"type": "treatment_started", "at": "2025-01-07T09:00:00Z"}, {}, "guard_failed"),
        ("c-001", {"type": "measure_recorded", "at": "2025-01-07T09:00:00Z"}, {}, "invalid_event"),
        ("c-001", {"type": "middle_phase_started", "at": "2025-01-07T09:00:00Z"}, {}, "not_allowed"),
        ("c-001", measure_for_seq(1), {}, "out_of_order"),
        ("c-001", measure_for_seq(4), {"expected_seq": 2}, "conflict"),
        ("c-001", measure_for_seq(4) | {"score": float("nan")}, {}, "invalid_event"),
        ("c-001", measure_for_seq(4) | {"score": 99}, {"idempotency_key": "k"}, "invalid_event"),
        ("nobody", measure_for_seq(4), {}, "no_course"),
        ("closed-1", measure_for_seq(4), {}, "course_closed"),
    ]
    for course_id, event, kwargs, code in attempts:
        result = store.apply(course_id, event, **kwargs)
        assert not result.ok and result.code == code, (code, result)
    for event, code in [(opened(patient={"age": "x"}), "invalid_event"),
                        (opened("c-001"), "conflict"),
                        (opened("teen", adaptations=["adolescent"], patient={"age": 30}), "guard_failed")]:
        result = store.open_course(event)
        assert result.code == code, result
    assert db_content(db) == before
    assert store.apply("c-001", measure_for_seq(4), expected_seq=3).ok  # the course still works


def test_stale_expected_seq_is_a_conflict_and_the_current_one_is_accepted(store: Store):
    _fill(store, [opened(), measure_for_seq(2)])
    stale = store.apply("c-001", measure_for_seq(3), expected_seq=1)
    assert stale.code == "conflict" and "reload" in stale.message
    assert store.apply("c-001", measure_for_seq(3), expected_seq=2).seq == 3
    assert store.row("c-001").last_seq == 3


def test_closed_course_reports_course_closed_before_conflict(store: Store):
    _fill(store, demo_events("c-9"))
    assert store.apply("c-9", measure_for_seq(99), expected_seq=1).code == "course_closed"


def test_repeated_idempotency_key_returns_the_original_result_and_writes_once(store: Store, db: str):
    _fill(store, [opened()])
    first = store.apply("c-001", measure_for_seq(2, score=20), idempotency_key="visit-1")
    store.apply("c-001", measure_for_seq(3, score=12))
    before = db_content(db)
    again = store.apply("c-001", measure_for_seq(2, score=20), idempotency_key="visit-1",
                        expected_seq=1)
    assert again == first and again.seq == 2
    assert db_content(db) == before
    with pytest.raises(IdempotencyKeyReused, match="visit-1"):
        store.apply("c-001", measure_for_seq(4, score=5), idempotency_key="visit-1")
    assert db_content(db) == before
    assert [h.idempotency_key for h in store.history("c-001")] == [None, "visit-1", None]


def test_idempotent_retry_of_a_closing_event_returns_its_result(store: Store):
    events = demo_events("c-2")
    _fill(store, events[:-1])
    first = store.apply("c-2", events[-1], idempotency_key="close")
    assert first.ok and first.state == "completed"
    assert store.apply("c-2", events[-1], idempotency_key="close") == first


def test_open_course_with_idempotency_key_is_retry_safe(store: Store):
    first = store.open_course(opened("c-3"), idempotency_key="open-c-3")
    assert first.ok
    assert store.open_course(opened("c-3"), idempotency_key="open-c-3") == first
    assert store.open_course(opened("c-3"), idempotency_key="other").code == "conflict"
    assert store.count() == 1


def test_unknown_course(store: Store):
    result = store.apply("ghost", measure_for_seq(2))
    assert result.code == "no_course" and "ghost" in result.message
    for read in (store.get, store.history, store.row, store.export_course_file):
        with pytest.raises(UnknownCourse, match="ghost"):
            read("ghost")


def test_unknown_protocol_cannot_be_opened(store: Store, db: str):
    before = db_content(db)
    with pytest.raises(UnknownProtocol):
        store.open_course(opened(protocol="no-such-protocol"))
    assert db_content(db) == before


def test_list_filters_by_state_protocol_adaptation_and_synthetic(store: Store):
    _fill(store, [opened("a-1")])
    _fill(store, demo_events("b-1"))
    teen = opened("t-1", adaptations=["adolescent"], patient={"age": 15})
    assert store.open_course(teen, synthetic=True).ok
    assert [r.id for r in store.list()] == ["a-1", "b-1", "t-1"]
    assert [r.id for r in store.list(state="assessment")] == ["a-1", "t-1"]
    assert [r.id for r in store.list(state="completed")] == ["b-1"]
    assert [r.id for r in store.list(adaptation="adolescent")] == ["t-1"]
    assert [r.id for r in store.list(protocol="ipt-depression", synthetic=False)] == ["a-1", "b-1"]
    assert store.list(protocol="other") == []
    assert store.row("t-1").adaptations == ["adolescent"] and store.row("t-1").synthetic


def test_two_stores_on_one_file_never_use_a_stale_cached_course(db: str):
    with Store.open(db) as a, Store.open(db) as b:
        assert a.open_course(opened()).ok
        for seq in range(2, 12):
            writer = a if seq % 2 else b
            result = writer.apply("c-001", measure_for_seq(seq, score=seq))
            assert result.ok and result.seq == seq, result
        assert a.get("c-001").snapshot() == b.get("c-001").snapshot()
        assert a.verify().ok


def test_export_then_replay_and_import_round_trip(store: Store, tmp_path: Path):
    events = course_with_deviations("dev-1")
    _fill(store, events)
    original = store.get("dev-1")
    assert [d.code for d in original.deviations] == ["session_gap"]
    path = tmp_path / "dev-1.jsonl"
    path.write_text(store.export_course_file("dev-1"), encoding="utf-8")
    pinned = [{**events[0], "protocol": "ipt-depression@2.0.0"}, *events[1:]]  # its version
    assert [json.loads(line) for line in path.read_text().splitlines()] == pinned

    replayed = replay_file(path)
    assert replayed.exit_status == 0 and replayed.course is not None
    assert replayed.state == original.state
    assert [d["code"] for d in replayed.deviations] == ["session_gap"]
    assert replayed.outcome == original.outcome.to_dict()

    with Store.open(tmp_path / "other.db") as other:
        imported = other.import_course_file(path)
        assert (imported.course_id, imported.events, imported.skipped) == ("dev-1", len(events), [])
        again = other.get("dev-1")
        assert again.snapshot() == original.snapshot()
        assert other.export_course_file("dev-1") == store.export_course_file("dev-1")
        assert other.verify().ok


@pytest.mark.parametrize(
    "path", sorted(COURSES.rglob("*.jsonl")), ids=lambda p: str(p.relative_to(COURSES))
)
def test_course_files_round_trip_through_the_store(path: Path, tmp_path: Path):
    replayed = replay_file(path)
    with Store.open(tmp_path / "s.db") as store:
        if replayed.course is None:
            with pytest.raises(ImportRefused):
                store.import_course_file(path)
            assert store.count() == 0
            return
        if replayed.exit_status != 0:
            with pytest.raises(ImportRefused):
                store.import_course_file(path)
            return
        store.import_course_file(path)
        exported = tmp_path / "out.jsonl"
        exported.write_text(store.export_course_file(replayed.course_id), encoding="utf-8")
        loaded = store.get(replayed.course_id)
    again = replay_file(exported)
    assert again.rejected == [] and again.accepted == replayed.accepted
    assert (again.state, again.sessions_held, again.outcome, again.open_reviews) == (
        replayed.state, replayed.sessions_held, replayed.outcome, replayed.open_reviews
    )
    assert [d["code"] for d in again.deviations] == [d["code"] for d in replayed.deviations]
    assert loaded.snapshot() == replayed.course.snapshot()


def test_import_refuses_an_unexpected_rejection_unless_asked_to_skip(store: Store, tmp_path: Path):
    path = tmp_path / "c.jsonl"
    lines = [opened("imp-1"), measure_for_seq(2),
             {"type": "middle_phase_started", "at": "2025-01-07T09:00:00Z"}, measure_for_seq(3000)]
    path.write_text("\n".join(json.dumps(e) for e in lines) + "\n")
    with pytest.raises(ImportRefused, match="line 3: not_allowed"):
        store.import_course_file(path)
    assert store.count() == 0
    result = store.import_course_file(path, skip_rejected=True)
    assert result.events == 3 and [s["line"] for s in result.skipped] == [3]
    with pytest.raises(CourseExists):
        store.import_course_file(path, skip_rejected=True)


def test_import_many_is_all_or_nothing(store: Store, db: str):
    _fill(store, [opened("taken")])
    before = db_content(db)
    with pytest.raises(CourseExists, match="taken"):
        store.import_many([demo_events("new-1"), demo_events("taken")])
    with pytest.raises(EventRejected):
        store.import_many([demo_events("new-2"), [opened("bad"), measure_for_seq(-5)]])
    assert db_content(db) == before
    ids = store.import_many([Course.replay(demo_events("sim-1")), demo_events("sim-2")], synthetic=True)
    assert ids == ["sim-1", "sim-2"]
    assert [r.id for r in store.list(synthetic=True)] == ["sim-1", "sim-2"]
    assert store.verify().ok


def test_verify_names_a_hand_edited_event(store: Store, db: str):
    _fill(store, demo_events("c-a"))
    _fill(store, demo_events("c-b"))
    assert store.verify().ok
    drop_trigger(db, "events_no_update")
    body = execute(db, "SELECT body FROM events WHERE course_id='c-b' AND seq=8")[0][0]
    execute(db, "UPDATE events SET body = ? WHERE course_id='c-b' AND seq=8",
            (body.replace('"number":2', '"number":3'),))
    report = store.verify()
    assert not report.ok
    assert [(p.course_id, p.seq, p.kind) for p in report.problems] == [("c-b", 8, "hash")]
    # a plain get restores c-b from its snapshot (taken after its last event, whose hash still
    # matches): checking the chain is what verify and get(verify=True) are for
    with pytest.raises(CorruptCourse, match="c-b event 8"):
        store.get("c-b", verify=True)
    execute(db, "DELETE FROM snapshots WHERE course_id='c-b'")
    with pytest.raises(CorruptCourse, match="c-b"):
        store.get("c-b")  # replayed, the tampered log no longer replays (session number 3 != 2)
    assert store.get("c-a").state == "completed"


def test_the_database_refuses_to_update_or_delete_events(store: Store, db: str):
    _fill(store, [opened(), measure_for_seq(2)])
    for sql in ("UPDATE events SET at = 'x'", "DELETE FROM events WHERE seq = 2"):
        with pytest.raises(INTEGRITY_ERRORS, match="append-only"):
            execute(db, sql)
    assert len(execute(db, "SELECT * FROM events")) == 2


def test_verify_names_removed_events_and_a_changed_course_row(store: Store, db: str):
    _fill(store, demo_events("c-a"))
    _fill(store, demo_events("c-b"))
    drop_trigger(db, "events_no_delete")
    execute(db, "DELETE FROM events WHERE course_id='c-a' AND seq=5")
    execute(db, "UPDATE courses SET state='middle' WHERE id='c-b'")
    problems = {p.course_id: p for p in store.verify().problems}
    assert (problems["c-a"].seq, problems["c-a"].kind) == (5, "log")
    assert problems["c-b"].kind == "course_row" and "state" in problems["c-b"].message


def test_a_missing_stored_protocol_is_an_error_not_a_reinterpretation(store: Store, db: str):
    _fill(store, [opened(), measure_for_seq(2)])
    if is_pg(db):  # PostgreSQL enforces the foreign key for every connection
        execute(db, "ALTER TABLE courses DROP CONSTRAINT courses_fingerprint_fkey")
    execute(db, "DELETE FROM protocols")
    with Store.open(db) as fresh:
        with pytest.raises(MissingProtocol, match="c-001"):
            fresh.get("c-001")
        with pytest.raises(MissingProtocol):
            fresh.apply("c-001", measure_for_seq(3))
        assert not fresh.verify().ok


def _registry_shipping_new_version() -> Registry:
    """A registry whose ipt-depression is a newer version with another session range."""
    from importlib.resources import files

    from iptflow import builtins, load_protocol_file

    shipped = load_protocol_file(str(files("iptflow_protocols") / "ipt-depression" / "1.0.0.toml"))
    assert isinstance(shipped, ProtocolDef)
    newer = shipped.model_copy(update={"version": "2.0.0", "session_range": SessionRange(min=8, max=10)})

    class Core:
        register_guards = staticmethod(builtins.register_guards)
        register_deviation_checks = staticmethod(builtins.register_deviation_checks)
        register_events = staticmethod(builtins.register_events)

        @staticmethod
        @hookimpl
        def register_protocols(register):
            register(newer)

    import pluggy

    from iptflow.engine import hookspecs

    pm = pluggy.PluginManager("iptflow")
    pm.add_hookspecs(hookspecs)
    pm.register(Core(), name="core-v2")
    return Registry(pm=pm)


def _events_1(course_id: str, protocol: str = "ipt-depression@1.0.0") -> list[dict]:
    """The demo course without what protocol 1.0.0 does not know (ending_discussed)."""
    events = [e for e in demo_events(course_id) if e["type"] != "ending_discussed"]
    events[0] = {**events[0], "protocol": protocol}
    return events


def test_a_course_keeps_the_protocol_it_was_opened_under(db: str):
    events = _events_1("old-1")
    upto = next(i for i, e in enumerate(events) if e["type"] == "formulation_agreed")
    with Store.open(db) as store:
        _fill(store, events[:upto])
        old_fingerprint = store.row("old-1").fingerprint
    newer = _registry_shipping_new_version()
    assert newer.resolve("ipt-depression").fingerprint != old_fingerprint
    with Store.open(db, registry=newer) as store:
        course = store.get("old-1")
        assert course.protocol.version == "1.0.0" and course.protocol.fingerprint == old_fingerprint
        # 12 planned sessions are inside 1.0.0's range (12-16), outside 2.0.0's (8-10)
        assert store.apply("old-1", events[upto]).ok
        for event in events[upto + 1:]:
            assert store.apply("old-1", event).ok
        assert store.row("old-1").state == "completed"
        fresh = _events_1("new-1", "ipt-depression")
        _fill(store, fresh[:upto])
        rejected = store.apply("new-1", fresh[upto])
        assert rejected.code == "guard_failed"
        assert store.get("new-1").protocol.version == "2.0.0"
        assert store.verify().ok
        assert len(store.recorder.fingerprints()) == 2


def test_a_protocol_the_installed_plugins_cannot_compile_is_a_clear_error(db: str):
    with Store.open(db) as store:
        assert store.open_course(opened("t-1", adaptations=["adolescent"], patient={"age": 14})).ok
    pm, _ = make_plugin_manager(entry_points_too=False)  # the adolescent plugin is gone
    with Store.open(db, registry=Registry(pm=pm)) as store, pytest.raises(
        MissingProtocol, match="cannot be compiled"
    ):
        store.get("t-1")


def test_read_only_opening_of_a_missing_file_creates_nothing(tmp_path: Path):
    path = tmp_path / "absent.db"
    with pytest.raises(NoDatabase, match="absent.db"):
        Store.open(path, create=False)
    assert not path.exists()


def test_a_file_that_is_not_a_database_is_a_store_error(tmp_path: Path):
    path = tmp_path / "notes.db"
    path.write_text("these are not the pages you are looking for\n" * 100)
    with pytest.raises(DamagedStore, match="not a database"):
        Store.open(path)
    with pytest.raises(StoreError, match="synchronous"):
        Store.open(tmp_path / "x.db", synchronous="SOMETIMES")


def test_file_databases_use_wal_and_foreign_keys(tmp_path: Path):
    store = Store.open(tmp_path / "wal.db")
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    store.close()


def test_clock_none_records_no_wall_clock_time(tmp_path: Path):
    with Store.open(tmp_path / "a.db", clock=None) as a, Store.open(tmp_path / "b.db", clock=None) as b:
        for s in (a, b):
            s.import_many([demo_events("same")])
        assert {e.recorded_at for e in a.history("same")} == {None}
    assert db_content(tmp_path / "a.db")["events"] == db_content(tmp_path / "b.db")["events"]


def test_memory_store_works(tmp_path: Path):
    with Store.open(":memory:") as store:
        _fill(store, demo_events("m-1"))
        assert store.get("m-1").state == "completed" and store.verify().ok
