"""The store's public reader (``Store.recorder``), its one replay of a stored log
(``loading.replay_log``) and the research tables' API, on real SQLite files and on a real
PostgreSQL server (every test taking ``db`` runs on both: ``store_url``, tests/conftest.py)."""

from __future__ import annotations

import json

import pytest
from pg_support import drop_trigger, execute, is_pg
from store_support import db_content, measure_for_seq, opened

from iptflow import Course
from iptflow.errors import EventRejected
from iptflow.research.demo import demo_events
from iptflow.store import CorruptCourse, SimulationRun, Store
from iptflow.store.hashing import decode_event, event_hash
from iptflow.store.loading import replay_log
from iptflow.store.postgres import PgRecorder
from iptflow.store.recorder import Recorder


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
        assert store.apply(events[0]["course_id"], event).ok


def _tamper(db: str, course_id: str, seq: int, old: str, new: str) -> None:
    """Change one stored body behind the store's back (dropping the append-only trigger)."""
    drop_trigger(db, "events_no_update")
    body = execute(db, "SELECT body FROM events WHERE course_id = ? AND seq = ?",
                   (course_id, seq))[0][0]
    assert old in body
    execute(db, "UPDATE events SET body = ? WHERE course_id = ? AND seq = ?",
            (body.replace(old, new), course_id, seq))


# -- the public reader ----------------------------------------------------------------------------
def test_the_reader_returns_what_was_written(store: Store):
    _fill(store, demo_events("c-b"))
    assert store.open_course(opened("c-a")).ok
    assert store.apply("c-a", measure_for_seq(2), idempotency_key="visit-1").ok
    reader = store.recorder
    assert reader.course_ids() == ["c-a", "c-b"]
    assert reader.count() == 2
    row = reader.course_row("c-a")
    assert row is not None and (row["last_seq"], row["state"]) == (2, "assessment")
    assert reader.course_row("nobody") is None
    events = reader.events("c-b")
    assert [e["seq"] for e in events] == list(range(1, len(demo_events("c-b")) + 1))
    assert [decode_event(e["body"]) for e in events] == demo_events("c-b")
    row_b = reader.course_row("c-b")
    assert row_b is not None
    prev = row_b["fingerprint"]
    for e in events:  # the chain, recomputed from the public rows
        assert e["prev_hash"] == prev
        assert e["hash"] == event_hash(prev, "c-b", e["seq"], e["body"])
        prev = e["hash"]
    assert row_b["last_hash"] == prev
    assert [e["seq"] for e in reader.events("c-b", upto=3)] == [1, 2, 3]
    keyed = reader.event_with_key("c-a", "visit-1")
    assert keyed is not None and keyed["seq"] == 2
    assert reader.event_with_key("c-a", "other") is None
    assert sorted(reader.fingerprints()) == sorted(  # c-a runs on 1.0.0, the demo on 2.0.0
        {row["fingerprint"], row_b["fingerprint"]})
    text = reader.protocol_json(row_b["fingerprint"])
    assert text is not None and json.loads(text)["id"] == "ipt-depression"
    assert reader.protocol_json("sha256:none") is None
    assert reader.orphan_course_ids() == []
    assert reader.integrity_check() == ["ok"]
    assert [r["id"] for r in reader.course_rows(state="assessment")] == ["c-a"]


def test_the_reader_finds_events_without_a_course_row(db: str, store: Store):
    _fill(store, [opened(), measure_for_seq(2)])
    if is_pg(db):  # PostgreSQL enforces foreign keys on every connection
        execute(db, "ALTER TABLE events DROP CONSTRAINT events_course_id_fkey")
    execute(db, "DELETE FROM course_adaptations")  # foreign keys are off on a raw SQLite connection
    execute(db, "DELETE FROM courses")
    assert store.recorder.orphan_course_ids() == ["c-001"]
    assert [(p.kind, p.course_id) for p in store.verify().problems] == [("orphan", "c-001")]


def test_a_recorder_opens_a_file_by_itself(db: str, store: Store):
    _fill(store, [opened(), measure_for_seq(2)])
    opener = PgRecorder if is_pg(db) else Recorder
    reader = opener.open(db, synchronous="NORMAL", create=False, timeout=5.0)
    try:
        with reader.read():
            assert reader.course_ids() == ["c-001"]
            assert len(reader.events("c-001")) == 2
    finally:
        reader.close()


def test_a_write_that_raises_writes_nothing(db: str, store: Store):
    _fill(store, [opened(), measure_for_seq(2)])
    before = db_content(db)
    with pytest.raises(RuntimeError), store.recorder.write():
        store.recorder.insert_simulation_run("ipt-depression", "[]", "sha256:x", 1, 1, "{}")
        raise RuntimeError("abandon")
    assert db_content(db) == before
    assert store.simulation_runs() == []


# -- the one replay of a stored log ---------------------------------------------------------------
def _stored(store: Store, course_id: str) -> tuple[list[dict], object]:
    row = store.recorder.course_row(course_id)
    assert row is not None
    bodies = [decode_event(e["body"]) for e in store.recorder.events(course_id)]
    return bodies, store.protocols.compiled(row["fingerprint"], course_id)


def test_replay_log_rebuilds_the_stored_course(store: Store):
    events = demo_events("c-001")
    _fill(store, events)
    bodies, compiled = _stored(store, "c-001")
    replayed = replay_log(bodies, store.registry, compiled)
    assert replayed.ok and replayed.rejection is None and replayed.seq == replayed.course.seq
    assert replayed.course is not None
    assert replayed.course.snapshot() == Course.replay(events).snapshot()
    assert replayed.course.snapshot() == store.get("c-001").snapshot()


def test_replay_log_names_the_first_rejected_event(db: str, store: Store):
    _fill(store, demo_events("c-001"))
    _tamper(db, "c-001", 8, '"number":2', '"number":3')  # session 3 before session 2
    bodies, compiled = _stored(store, "c-001")
    replayed = replay_log(bodies, store.registry, compiled)
    assert not replayed.ok and replayed.course is not None and replayed.course.seq == 7  # as before event 8
    assert replayed.seq == 8 and replayed.rejection is not None
    assert replayed.rejection.event_type == "session_held"
    # loading (by replay: without its snapshot), verify and the routine name the same event
    execute(db, "DELETE FROM snapshots WHERE course_id = 'c-001'")
    with pytest.raises(CorruptCourse, match="event 8 is rejected on replay") as info:
        store.get("c-001")
    assert info.value.details["seq"] == 8
    assert [(p.seq, p.kind) for p in store.verify().problems] == [(8, "hash")]


def test_replay_log_rejects_a_first_event_that_does_not_open_and_an_empty_log(store: Store):
    replayed = replay_log([measure_for_seq(1)], store.registry)
    assert (replayed.seq, replayed.rejection.code) == (1, "no_course")
    empty = replay_log([], store.registry)
    assert (empty.course, empty.seq, empty.rejection.code) == (None, 1, "no_course")


def test_import_many_validates_event_sequences_with_replay_log(db: str, store: Store):
    events = demo_events("c-x")
    broken = events[:3] + events[4:]  # a gap: one event is rejected
    expected = replay_log(broken, store.registry)
    assert expected.rejection is not None
    before = db_content(db)
    with pytest.raises(EventRejected) as info:
        store.import_many([demo_events("c-ok"), broken])
    assert info.value.rejection == expected.rejection
    assert db_content(db) == before


# -- research tables ------------------------------------------------------------------------------
def test_simulation_runs_are_recorded_and_read_through_the_store(db: str):
    with Store.open(db, clock=None) as store:
        assert store.simulation_runs() == []
        first = store.record_simulation_run(protocol="ipt-depression", adaptations=[],
                                            fingerprint="sha256:a", n=5, seed=1, model={"b": 1, "a": 2})
        second = store.record_simulation_run(protocol="ipt-depression", adaptations=["adolescent"],
                                             fingerprint="sha256:b", n=7, seed=2, model={})
        assert (first, second) == (1, 2)
    with Store.open(db, create=False) as store:
        runs = store.simulation_runs()
    assert runs == [
        SimulationRun(1, "ipt-depression", [], "sha256:a", 5, 1, {"a": 2, "b": 1}, True),
        SimulationRun(2, "ipt-depression", ["adolescent"], "sha256:b", 7, 2, {}, True),
    ]
    stored = execute(db, "SELECT model, adaptations, synthetic FROM simulation_runs ORDER BY run")
    assert [tuple(r) for r in stored] == [('{"a": 2, "b": 1}', "[]", 1), ("{}", '["adolescent"]', 1)]
