"""``Store.verify``: check every course's hash chain, replay and derived row.

For each course the first problem found is reported, naming the event (``seq``) where the log
stops being what was written: a missing seq, a changed body (hash mismatch), a broken link
(``prev_hash``), indexed columns that disagree with the body, an event the course's protocol
rejects on replay, or a course row (last seq, last hash, derived summary) that disagrees with
the replayed log, or ``course_adaptations`` rows that disagree with the course. A course's
``protocol_migrated`` records are checked in the same chain (hash, link, columns, the pin
each moved from), and the course must replay under the protocol it is pinned to now. Stored
protocols are checked against their fingerprints, a missing table is a ``schema`` finding, and
with ``integrity=True`` SQLite's ``PRAGMA integrity_check`` runs first. A file SQLite finds
damaged (malformed pages, not a database) is a ``damaged`` finding, not an exception.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from iptflow.store.errors import DamagedStore, StoreError
from iptflow.store.hashing import decode_event, event_hash, migration_hash
from iptflow.store.loading import PinnedProtocols, continue_log, derived_columns, replay_log
from iptflow.store.recorder import Recorder
from iptflow.store.rows import Problem, VerifyReport
from iptflow.store.snapshots import usable_snapshot

__all__ = ["TABLES", "check_course", "check_log", "check_migration", "verify_store"]


#: The store's tables (from its migrations); a missing one is a ``schema`` finding
TABLES = ("protocols", "courses", "events", "course_adaptations", "simulation_runs")


def verify_store(
    recorder: Recorder, protocols: PinnedProtocols, *, integrity: bool = True
) -> VerifyReport:
    """Check a whole store in one read snapshot (each stored protocol is compiled afresh).

    A file SQLite finds damaged is a finding of kind ``damaged`` (checking stops where the
    damage stops it), never an exception.
    """
    report = VerifyReport()
    try:
        with recorder.read():
            _verify(recorder, protocols, report, integrity)
    except DamagedStore as exc:
        report.problems.append(Problem("damaged", exc.message))
    return report


def _verify(
    recorder: Recorder, protocols: PinnedProtocols, report: VerifyReport, integrity: bool
) -> None:
    if integrity:
        rows = recorder.integrity_check()
        if rows != ["ok"]:
            report.problems.append(Problem("integrity", "; ".join(rows[:5])))
    tables = recorder.tables()
    missing = [t for t in TABLES if t not in tables]
    for table in missing:
        report.problems.append(
            Problem("schema", f"table {table} is missing (it was dropped outside iptflow)")
        )
    if {"protocols", "courses", "events"} & set(missing):
        return
    for fingerprint in recorder.fingerprints():
        report.protocols += 1
        protocols.forget(fingerprint)
        try:
            protocols.compiled(fingerprint)
        except StoreError as exc:
            report.problems.append(Problem("protocol", exc.message))
    for orphan in recorder.orphan_course_ids():
        report.problems.append(
            Problem("orphan", "events of a course that has no course row", orphan)
        )
    course_ids = recorder.course_ids()
    adaptations = None if "course_adaptations" in missing else recorder.adaptation_rows()
    migrated = recorder.all_course_migrations()
    for orphan in sorted(set(adaptations or ()) - set(course_ids)):
        report.problems.append(Problem(
            "course_adaptations", "course_adaptations rows of a course that has no course row",
            orphan,
        ))
    for course_id in course_ids:
        report.courses += 1
        try:
            row = recorder.course_row(course_id)
            assert row is not None
            events = recorder.events(course_id)
            report.events += len(events)
            expected = None if adaptations is None else adaptations.get(course_id, [])
            problem = check_course(protocols, row, events, expected, migrated.get(course_id, []),
                                   recorder.snapshot(course_id))
        except DamagedStore as exc:
            problem = Problem("damaged", exc.message, course_id)
        if problem is not None:
            report.problems.append(problem)


def check_log(
    row: Mapping[str, Any],
    events: list[dict[str, Any]],
    migrated: Sequence[Mapping[str, Any]] = (),
) -> list[Any] | Problem:
    """The decoded bodies of a log whose seqs, chain, hashes and columns are sound, or its first
    problem (also what reads with ``verify=True`` check). ``migrated``: the course's
    ``protocol_migrated`` records, checked where they stand in the chain."""
    course_id = row["id"]
    # event 1 chains on the protocol the course was opened under: its first migration's "from"
    pin = migrated[0]["from_fingerprint"] if migrated else row["fingerprint"]
    prev = pin
    bodies = []
    pending = list(migrated)
    for expected_seq, ev in enumerate(events, start=1):
        seq = ev["seq"]
        if seq != expected_seq:
            return Problem("log", f"event {expected_seq} is missing (next stored is {seq})",
                           course_id, expected_seq)
        if ev["prev_hash"] != prev:
            return Problem("chain", "its prev_hash does not match the previous event's hash",
                           course_id, seq)
        if event_hash(prev, course_id, seq, ev["body"]) != ev["hash"]:
            return Problem("hash", "its hash does not match its content: it was changed after "
                           "it was written", course_id, seq)
        try:
            body = decode_event(ev["body"])
        except ValueError as exc:
            return Problem("hash", f"its body is not valid JSON: {exc}", course_id, seq)
        actor = body.get("actor") if isinstance(body, dict) else None
        if not isinstance(body, dict) or (ev["type"], ev["at"], ev["actor"]) != (
            body.get("type"), body.get("at"), actor if isinstance(actor, str) else None
        ):
            return Problem("columns", "its type, at or actor column disagrees with its body",
                           course_id, seq)
        bodies.append(body)
        prev = ev["hash"]
        while pending and pending[0]["after_seq"] == seq:
            record = pending.pop(0)
            problem = check_migration(course_id, record, len(migrated) - len(pending), prev, pin)
            if problem is not None:
                return problem
            prev, pin = record["hash"], record["to_fingerprint"]
    if pending:
        return Problem("migration", f"migration record {pending[0]['n']} says it was made after "
                       f"event {pending[0]['after_seq']}, which is not in the log", course_id)
    if row["last_seq"] != len(events) or row["last_hash"] != prev:
        return Problem(
            "course_row",
            f"the course row says the log ends at event {row['last_seq']}, "
            f"the log has {len(events)} events (events were removed or the row was changed)",
            course_id,
        )
    if row["fingerprint"] != pin:
        return Problem("course_row", f"the course row is pinned to {row['fingerprint']}, its "
                       f"chain of migrations to {pin} (the row was changed)", course_id)
    return bodies


def check_migration(
    course_id: str, record: Mapping[str, Any], n: int, prev: str, pin: str
) -> Problem | None:
    """The first problem of a course's ``n``-th migration record, chained after ``prev`` while
    the course was pinned to ``pin``, or None."""
    where = f"migration record {record['n']} (after event {record['after_seq']})"
    if record["n"] != n:
        return Problem("migration", f"{where}: it should be record {n} (a record is missing)",
                       course_id)
    if record["prev_hash"] != prev:
        return Problem("chain", f"{where}: its prev_hash does not match the chain before it",
                       course_id)
    if migration_hash(prev, course_id, n, record["body"]) != record["hash"]:
        return Problem("hash", f"{where}: its hash does not match its content: it was changed "
                       "after it was written", course_id)
    try:
        body = decode_event(record["body"])
    except ValueError as exc:
        return Problem("hash", f"{where}: its body is not valid JSON: {exc}", course_id)
    columns = {"type": "protocol_migrated", "after_seq": record["after_seq"],
               "from": record["from_fingerprint"], "to": record["to_fingerprint"],
               "class": record["class"], "actor": record["actor"], "at": record["at"],
               "reason": record["reason"]}
    if body != columns:
        return Problem("columns", f"{where}: its columns disagree with its body", course_id)
    if record["from_fingerprint"] != pin:
        return Problem("migration", f"{where}: it moved the course from {record['from_fingerprint']}"
                       f", but the course was pinned to {pin}", course_id)
    return None


def check_course(
    protocols: PinnedProtocols,
    row: Mapping[str, Any],
    events: list[dict[str, Any]],
    adaptations: list[str] | None = None,
    migrated: Sequence[Mapping[str, Any]] = (),
    snapshot: Mapping[str, Any] | None = None,
) -> Problem | None:
    """The first problem of one course (its row, event rows, migration records and, unless
    None, its sorted ``course_adaptations`` rows), or None. The course must replay under the
    protocol it is pinned to now, from its first event; a usable ``snapshot`` (the course's
    ``snapshots`` row) must give the same course as that replay."""
    course_id = row["id"]
    if not events:
        return Problem("log", "the course has no events", course_id)
    bodies = check_log(row, events, migrated)
    if isinstance(bodies, Problem):
        return bodies
    try:
        compiled = protocols.compiled(row["fingerprint"], course_id)
    except StoreError as exc:
        return Problem("protocol", exc.message, course_id)
    replayed = replay_log(bodies, compiled.registry, compiled)
    if not replayed.ok:
        return Problem("replay", f"rejected on replay: {replayed.result.code}: "
                       f"{replayed.result.message}", course_id, replayed.seq)
    course = replayed.course
    assert course is not None
    if course.course_id != course_id:
        return Problem("replay", f"its course_id is {course.course_id!r}", course_id, 1)
    derived = derived_columns(course)
    derived.update(
        created_at=bodies[0]["at"],
        updated_at=bodies[-1]["at"],
        protocol_id=course.protocol.id,
        protocol_version=course.protocol.version,
        adaptations=json.dumps(course.protocol.adaptations),
        format=course.facts.format,
    )
    stored = {key: row[key] for key in derived}
    if stored != derived:
        wrong = [k for k in derived if stored[k] != derived[k]]
        return Problem(
            "course_row",
            "the course row disagrees with the replayed log: "
            + ", ".join(f"{k} is {json.dumps(stored[k])}, replay gives {json.dumps(derived[k])}"
                        for k in wrong),
            course_id,
        )
    if adaptations is not None and adaptations != sorted(course.protocol.adaptations):
        return Problem(
            "course_adaptations",
            f"course_adaptations lists {', '.join(adaptations) or 'no adaptation'}, the course has "
            f"{', '.join(sorted(course.protocol.adaptations)) or 'none'} (a row was deleted, added "
            "or changed outside iptflow)",
            course_id,
        )
    restored = usable_snapshot(snapshot, events, bodies, compiled)
    if restored is not None:
        seq = restored.seq
        continued = continue_log(restored, bodies).course
        if continued is None or continued.to_snapshot() != course.to_snapshot():
            return Problem("snapshot", f"the snapshot taken after event {seq} disagrees with "
                           "the replayed log (an installed plugin now derives the course "
                           "differently, or the row was edited); loads use it until the next "
                           "event replaces it", course_id, seq)
    return None
