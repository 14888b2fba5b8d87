"""Course snapshots (issue 16): ``Course.to_snapshot`` / ``Course.from_snapshot`` restore a course
exactly, and the store loads a course from its snapshot plus the events after it, ignoring a
snapshot that is stale, tampered with or written by another engine version or format."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pg_support import drop_trigger, execute

import iptflow
from iptflow import Course, Registry
from iptflow.engine.history import LazyHistory
from iptflow.engine.plugins import make_plugin_manager
from iptflow.engine.replay import replay_file
from iptflow.engine.snapshot import ENGINE_VERSION, SNAPSHOT_FORMAT, InvalidSnapshot
from iptflow.errors import CourseFileError, PluginError
from iptflow.research.demo import demo_events
from iptflow.store import CorruptCourse, HashMismatch, Store
from iptflow.store.snapshots import _digest

TESTS = Path(__file__).parent
COURSE_FILES = sorted((TESTS / "courses").rglob("*.jsonl")) + sorted(
    (TESTS / "courses_variants").rglob("*.jsonl")
)


def _histories() -> list[tuple[str, list[dict[str, Any]]]]:
    """The accepted events of every course file that opens a course."""
    out = []
    for path in COURSE_FILES:
        try:
            result = replay_file(path)
        except CourseFileError:
            continue
        if result.course is not None and len(result.course.history) > 1:
            out.append((path.name, result.course.history))
    return out


HISTORIES = _histories()


def _through_json(data: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(data))


def _results(course: Course, events: list[dict[str, Any]]) -> list[Any]:
    return [course.apply(copy.deepcopy(e)) for e in events]


def test_the_course_files_cover_both_protocol_versions_and_every_adaptation() -> None:
    versions = {h[0]["protocol"] for _, h in HISTORIES}
    adaptations = {a for _, h in HISTORIES for a in h[0].get("adaptations", [])}
    assert len(HISTORIES) > 40
    assert {"adolescent", "bipolar", "bulimia", "ptsd"} <= adaptations
    courses = [replay_file(p).course for p in COURSE_FILES if p.name.startswith(("v1-", "v2-"))]
    assert {c.protocol.version for c in courses if c is not None} == {"1.0.0", "2.0.0"}
    assert versions


@pytest.mark.parametrize(("name", "history"), HISTORIES, ids=[n for n, _ in HISTORIES])
def test_a_restored_course_is_the_replayed_course_at_every_event(
    name: str, history: list[dict[str, Any]]
) -> None:
    for cut in range(1, len(history) + 1):
        replayed = Course.replay(history[:cut])
        data = _through_json(replayed.to_snapshot())
        restored = Course.from_snapshot(replayed.compiled, data)
        assert restored.snapshot() == replayed.snapshot(), (name, cut)
        assert restored.to_snapshot() == data
        assert restored.outcome == replayed.outcome
        rest = history[cut:]
        assert _results(restored, rest) == _results(replayed, rest), (name, cut)
        assert restored.snapshot() == replayed.snapshot()
        # events the course must reject are rejected alike
        again = {"type": "course_opened", "at": history[0]["at"], "course_id": "x",
                 "protocol": "ipt-depression"}
        assert restored.apply(again) == replayed.apply(again)


def test_the_baseline_stays_one_of_the_measures() -> None:
    course = Course.replay(demo_events("c-base"))
    restored = Course.from_snapshot(course.compiled, _through_json(course.to_snapshot()))
    assert restored.facts.baseline is not None
    assert any(m is restored.facts.baseline for m in restored.facts.measures)


def _bad(data: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(data)
    target = out
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return out


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("engine",), "0.0.1-other", "written by iptflow '0.0.1-other'"),
        (("format",), SNAPSHOT_FORMAT + 1, "in format"),
        (("fingerprint",), "sha256:other", "is of protocol"),
        (("state",), "nowhere", "state 'nowhere'"),
        (("seq",), 0, "seq must be"),
        (("seq",), True, "seq must be"),
        (("facts", "measures"), [["phq9", "x", None, "assessment", "2025-01-06T09:00:00Z", 2, None]],
         "not a number"),
        (("facts", "measures"), [["nope", 1, None, "assessment", "2025-01-06T09:00:00Z", 2, None]],
         "unknown instrument"),
        (("facts", "baseline"), 99, "not one of the"),
        (("facts", "last_at"), "2025-01-06T09:00:00", "no time zone"),
        (("facts", "tasks"), [1], "expected a string"),
        (("deviations",), [["code", "m", 2]], "do not validate"),
    ],
)
def test_a_snapshot_that_is_not_one_of_this_course_is_refused(
    path: tuple[str, ...], value: Any, message: str
) -> None:
    course = Course.replay(demo_events("c-bad"))
    data = _through_json(course.to_snapshot())
    with pytest.raises(InvalidSnapshot, match=message) as info:
        Course.from_snapshot(course.compiled, _bad(data, path, value))
    assert info.value.code == "invalid_snapshot"
    with pytest.raises(InvalidSnapshot, match="not a course snapshot"):
        Course.from_snapshot(course.compiled, {**data, "extra": 1})


def test_a_plugin_failure_leaves_a_restored_course_unchanged() -> None:
    """A restored course has no full history: undo restores the snapshot and the events since."""
    events = demo_events("c-undo")

    def event_accepted(course: Any, event: Any, result: Any) -> None:
        if result.seq == 12:
            raise RuntimeError("the audit trail is down")

    plugin = SimpleNamespace(event_accepted=iptflow.hookimpl(event_accepted))
    pm, _ = make_plugin_manager(extra={"audit": plugin})
    registry = Registry(pm)
    plain = Course.replay(events[:8], registry, notify=False)
    restored = Course.from_snapshot(plain.compiled, _through_json(plain.to_snapshot()))
    assert restored.history == []
    for event in events[8:11]:
        assert restored.apply(event).ok
    before = restored.snapshot()
    with pytest.raises(PluginError, match="audit"):
        restored.apply(events[11])
    assert restored.snapshot() == before and restored.seq == 11
    assert len(restored.history) == 3  # the events applied since the snapshot, as before
    expected = Course.replay(events, notify=False)
    restored._notify = False  # the observer would fail again on seq 12
    for event in events[11:]:
        assert restored.apply(event).ok
    assert restored.snapshot() == expected.snapshot()


# -- the store ------------------------------------------------------------------------------------
def _import_all(store: Store) -> dict[str, list[dict[str, Any]]]:
    courses = {}
    for _, history in HISTORIES:
        course_id = history[0]["course_id"]
        if course_id in courses:
            continue
        store.import_many([history])
        courses[course_id] = history
    return courses


def _snapshot_row(store_url: str, course_id: str) -> tuple[Any, ...]:
    return execute(store_url, "SELECT seq, hash, body FROM snapshots WHERE course_id = ?",
                   (course_id,))[0]


def test_every_stored_course_loads_the_same_with_and_without_its_snapshot(store_url: str) -> None:
    with Store.open(store_url, clock=None) as store:
        courses = _import_all(store)
        assert len(courses) > 40
        for course_id, history in courses.items():
            seq, _, _ = _snapshot_row(store_url, course_id)
            assert seq == len(history)  # stored whole: its snapshot is taken after its last event
            loaded = store.get(course_id)
            assert isinstance(loaded.history, LazyHistory) and loaded.history.pending == seq
            _assert_same(loaded, Course.replay(history))
            _assert_same(store.get(course_id, verify=True), Course.replay(history))
        execute(store_url, "DELETE FROM snapshots")
        for course_id, history in courses.items():
            _assert_same(store.get(course_id), Course.replay(history))
        assert store.verify().ok


def _assert_same(loaded: Course, expected: Course) -> None:
    """Everything a caller reads of a course is the same (the history last: reading decodes)."""
    assert loaded.snapshot() == expected.snapshot()  # state, seq, facts, deviations, outcome
    assert loaded.to_snapshot() == expected.to_snapshot()
    assert loaded.outcome == expected.outcome and loaded.deviations == expected.deviations
    assert loaded.history == expected.history  # agendas, timelines and migrations read it
    assert list(reversed(loaded.history)) == list(reversed(expected.history))


def test_every_stored_course_loads_the_same_from_a_snapshot_in_its_middle(store_url: str) -> None:
    """Snapshots taken half-way, the rest of each log applied by a store that keeps none."""
    with Store.open(store_url, clock=None) as store, \
            Store.open(store_url, clock=None, snapshot_every=0) as appender:
        seen = set()
        for _, history in HISTORIES:
            course_id = history[0]["course_id"]
            if course_id in seen:
                continue
            seen.add(course_id)
            cut = (len(history) + 1) // 2
            store.import_many([history[:cut]])
            for event in history[cut:]:
                assert appender.apply(course_id, event).ok
            assert _snapshot_row(store_url, course_id)[0] == cut
            loaded, replayed = store.get(course_id), Course.replay(history)
            assert isinstance(loaded.history, LazyHistory) and loaded.history.pending == cut
            _assert_same(loaded, replayed)
            _assert_same(store.get(course_id, verify=True), replayed)
        assert len(seen) > 40 and store.verify().ok


def test_appends_keep_the_snapshot_beside_the_last_event(store_url: str) -> None:
    events = demo_events("c-app")
    with Store.open(store_url, snapshot_every=3) as store:
        assert store.open_course(events[0]).ok
        for event in events[1:10]:
            assert store.apply("c-app", event).ok
        seq, hash_, _ = _snapshot_row(store_url, "c-app")
        assert seq == 9 and hash_ == store.history("c-app")[8].hash
        assert store.apply("c-app", events[10]).ok  # the snapshot stays at 9: 10 and 11 follow it
        assert _snapshot_row(store_url, "c-app")[0] == 9
        assert store.get("c-app").snapshot() == Course.replay(events[:11]).snapshot()
    with Store.open(store_url, snapshot_every=1) as store:  # every event, a fresh store
        assert store.apply("c-app", events[11]).ok
        assert _snapshot_row(store_url, "c-app")[0] == 12
        rest = events[12:]
        loaded = store.get("c-app")
        expected = Course.replay(events[:12])
        assert _results(loaded, rest) == _results(expected, rest)
        assert loaded.snapshot() == expected.snapshot()
        assert store.verify().ok


def _set(store_url: str, sql: str, *params: Any) -> None:
    execute(store_url, sql, params)


@pytest.mark.parametrize("how", ["stale", "hash", "body", "engine", "format", "fingerprint",
                                 "digest_of_garbage"])
def test_a_stale_tampered_or_foreign_snapshot_is_ignored(store_url: str, how: str) -> None:
    events = demo_events("c-snap")
    with Store.open(store_url, clock=None) as store:
        store.import_many([events[:14]])
        row = execute(store_url, "SELECT seq, hash, format, engine, fingerprint, body FROM snapshots")[0]
        seq, hash_, fmt, engine, fingerprint, body = row
        data = json.loads(body)
        if how == "stale":  # written by a store that keeps no snapshots: the snapshot is behind
            with Store.open(store_url, snapshot_every=0) as other:
                for event in events[14:]:
                    assert other.apply("c-snap", event).ok
        elif how == "hash":
            _set(store_url, "UPDATE snapshots SET hash = ?", "sha256:" + "0" * 64)
        elif how == "body":  # a different course under the old digest
            data["state"] = "completed"
            _set(store_url, "UPDATE snapshots SET body = ?", json.dumps(data))
        elif how == "engine":  # another release wrote it (its digest is consistent)
            data["engine"] = "0.0.1"
            text = json.dumps(data)
            _set(store_url, "UPDATE snapshots SET engine = ?, body = ?, digest = ?", "0.0.1", text,
                 _digest("c-snap", seq, hash_, fmt, "0.0.1", fingerprint, text))
        elif how == "format":
            data["format"] = SNAPSHOT_FORMAT + 1
            text = json.dumps(data)
            _set(store_url, "UPDATE snapshots SET format = ?, body = ?, digest = ?", fmt + 1, text,
                 _digest("c-snap", seq, hash_, fmt + 1, ENGINE_VERSION, fingerprint, text))
        elif how == "fingerprint":
            data["fingerprint"] = "sha256:" + "1" * 64
            text = json.dumps(data)
            _set(store_url, "UPDATE snapshots SET fingerprint = ?, body = ?, digest = ?",
                 data["fingerprint"], text,
                 _digest("c-snap", seq, hash_, fmt, ENGINE_VERSION, data["fingerprint"], text))
        else:  # a consistent digest over a body that is no snapshot
            _set(store_url, "UPDATE snapshots SET body = ?, digest = ?", "[1, 2]",
                 _digest("c-snap", seq, hash_, fmt, engine, fingerprint, "[1, 2]"))
        expected = events if how == "stale" else events[:14]
        loaded = store.get("c-snap")
        assert loaded.snapshot() == Course.replay(expected).snapshot()
        assert loaded.history == Course.replay(expected).history
        assert store.verify().ok  # an unusable snapshot is no finding: it is never used
        if how != "stale":  # the next event writes a good one again
            store._cache.clear()
            assert store.apply("c-snap", events[14]).ok
            assert store.get("c-snap").snapshot() == Course.replay(events[:15]).snapshot()


def test_verify_reports_a_usable_snapshot_that_disagrees_with_the_log(store_url: str) -> None:
    events = demo_events("c-lie")
    with Store.open(store_url, clock=None) as store:
        store.import_many([events])
        seq, hash_, fmt, engine, fingerprint, body = execute(
            store_url, "SELECT seq, hash, format, engine, fingerprint, body FROM snapshots")[0]
        data = json.loads(body)
        data["facts"]["diagnosis"] = "someone else's"
        text = json.dumps(data)
        _set(store_url, "UPDATE snapshots SET body = ?, digest = ?", text,
             _digest("c-lie", seq, hash_, fmt, engine, fingerprint, text))
        assert store.get("c-lie").facts.diagnosis == "someone else's"  # get trusts a usable one
        report = store.verify()
        assert [(p.course_id, p.kind, p.seq) for p in report.problems] == [("c-lie", "snapshot", seq)]


def test_the_default_is_a_snapshot_every_ten_events(store_url: str) -> None:
    events = demo_events("c-ten")
    with Store.open(store_url) as store:
        assert store.open_course(events[0]).ok
        for event in events[1:25]:
            assert store.apply("c-ten", event).ok
        assert _snapshot_row(store_url, "c-ten")[0] == 20
        assert store.get("c-ten").snapshot() == Course.replay(events[:25]).snapshot()


def test_a_store_without_snapshots_writes_none_and_still_loads(store_url: str) -> None:
    events = demo_events("c-none")
    with Store.open(store_url, snapshot_every=0) as store:
        store.import_many([events[:5]])
        for event in events[5:]:
            assert store.apply("c-none", event).ok
        assert execute(store_url, "SELECT count(*) FROM snapshots")[0][0] == 0
        assert store.get("c-none").snapshot() == Course.replay(events).snapshot()
    with pytest.raises(iptflow.store.InvalidArgument, match="snapshot_every"):
        Store.open(store_url, snapshot_every=-1)


def _break_body(store_url: str, course_id: str, seq: int) -> None:
    """Make a stored body something that is not JSON, behind the store's back."""
    drop_trigger(store_url, "events_no_update")
    execute(store_url, "UPDATE events SET body = ? WHERE course_id = ? AND seq = ?",
            ('{"type": "session_held", ', course_id, seq))


def test_a_body_before_the_snapshot_that_is_not_json_fails_the_read_of_the_history(
    store_url: str,
) -> None:
    """A plain get trusts the events up to a usable snapshot (documented): it neither replays
    nor parses them; reading the history parses them and names the broken one; verify and
    get(verify=True) read everything first."""
    events = demo_events("c-json")
    with Store.open(store_url, clock=None) as store:
        store.import_many([events])
        _break_body(store_url, "c-json", 5)
        loaded = store.get("c-json")
        assert loaded.snapshot() == Course.replay(events).snapshot()
        assert len(loaded.history) == len(events) and loaded.history[0] == events[0]
        for read in (lambda: list(loaded.history), lambda: loaded.history[4],
                     lambda: loaded.history == events):
            with pytest.raises(CorruptCourse, match="course c-json: event 5 is not valid JSON") as info:
                read()
            assert (info.value.details["course_id"], info.value.details["seq"]) == ("c-json", 5)
        with pytest.raises(HashMismatch, match="c-json event 5") as mismatch:
            store.get("c-json", verify=True)
        assert mismatch.value.details["seq"] == 5
        assert [(p.course_id, p.seq, p.kind) for p in store.verify().problems] == [("c-json", 5, "hash")]


def test_a_body_after_the_snapshot_that_is_not_json_fails_the_load(store_url: str) -> None:
    events = demo_events("c-tail")
    with Store.open(store_url, clock=None) as store:
        store.import_many([events[:10]])
        with Store.open(store_url, snapshot_every=0) as appender:
            for event in events[10:14]:
                assert appender.apply("c-tail", event).ok
        _break_body(store_url, "c-tail", 12)
        with pytest.raises(CorruptCourse, match="course c-tail: event 12 is not valid JSON") as info:
            store.get("c-tail")
        assert (info.value.details["course_id"], info.value.details["seq"]) == ("c-tail", 12)
        execute(store_url, "DELETE FROM snapshots")  # replayed from the first event: the same
        with pytest.raises(CorruptCourse, match="course c-tail: event 12 is not valid JSON"):
            store.get("c-tail")


def test_a_plugin_failure_leaves_a_loaded_course_and_its_history_unchanged(store_url: str) -> None:
    """Undoing an event on a course loaded from its snapshot replays its (lazy) history."""
    events = demo_events("c-plug")

    def event_accepted(course: Any, event: Any, result: Any) -> None:
        if result.seq == 12:
            raise RuntimeError("the audit trail is down")

    plugin = SimpleNamespace(event_accepted=iptflow.hookimpl(event_accepted))
    pm, _ = make_plugin_manager(extra={"audit": plugin})
    with Store.open(store_url, registry=Registry(pm)) as store:
        store.import_many([events[:11]])
        loaded = store.get("c-plug")
        before = loaded.snapshot()
        with pytest.raises(PluginError, match="audit"):
            loaded.apply(events[11])
        assert loaded.snapshot() == before and loaded.history == events[:11]
        with pytest.raises(PluginError, match="audit"):  # the store's own course, too
            store.apply("c-plug", events[11])
        _assert_same(store.get("c-plug"), Course.replay(events[:11]))
        assert store.verify().ok
