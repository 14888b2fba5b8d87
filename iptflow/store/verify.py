"""``Store.verify``: check every course's hash chain, replay and derived row.

For each course the first problem found is reported, naming the event (``seq``) where the log
stops being what was written: a missing seq, a changed body (hash mismatch), a broken link
(``prev_hash``), indexed columns that disagree with the body, an event the course's protocol
rejects on replay, or a course row (last seq, last hash, derived summary) that disagrees with
the replayed log. Stored protocols are checked against their fingerprints, and with
``integrity=True`` SQLite's ``PRAGMA integrity_check`` runs first.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from iptflow.engine.course import Course
from iptflow.store.errors import StoreError
from iptflow.store.hashing import decode_event, event_hash
from iptflow.store.rows import Problem, VerifyReport

if TYPE_CHECKING:
    from iptflow.store.api import Store


def verify_store(store: Store, *, integrity: bool = True) -> VerifyReport:
    report = VerifyReport()
    with store._read():
        if integrity:
            rows = [r[0] for r in store.conn.execute("PRAGMA integrity_check").fetchall()]
            if rows != ["ok"]:
                report.problems.append(Problem("integrity", "; ".join(str(r) for r in rows[:5])))
        for row in store._rows("SELECT fingerprint FROM protocols ORDER BY fingerprint"):
            report.protocols += 1
            try:
                store._compiled.pop(row["fingerprint"], None)
                store._compiled_for(row["fingerprint"], "(none)")
            except StoreError as exc:
                message = exc.message.replace("course (none): ", "")
                report.problems.append(Problem("protocol", message))
        ids = [r["id"] for r in store._rows("SELECT id FROM courses ORDER BY id")]
        orphans = store._rows(
            "SELECT DISTINCT course_id FROM events WHERE course_id NOT IN (SELECT id FROM courses)"
        )
        for orphan in orphans:
            report.problems.append(
                Problem("orphan", "events of a course that has no course row", orphan["course_id"])
            )
        for course_id in ids:
            report.courses += 1
            row = store._course_row(course_id)
            assert row is not None
            events = store._event_rows(course_id)
            report.events += len(events)
            problem = check_course(store, row, events)
            if problem is not None:
                report.problems.append(problem)
    return report


def check_course(store: Store, row: dict[str, Any], events: list[dict[str, Any]]) -> Problem | None:
    """The first problem of one course, or None."""
    course_id = row["id"]
    if not events:
        return Problem("log", "the course has no events", course_id)
    prev = row["fingerprint"]
    bodies = []
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
    if row["last_seq"] != len(events) or row["last_hash"] != prev:
        return Problem(
            "course_row",
            f"the course row says the log ends at event {row['last_seq']}, "
            f"the log has {len(events)} events (events were removed or the row was changed)",
            course_id,
        )
    try:
        compiled = store._compiled_for(row["fingerprint"], course_id)
    except StoreError as exc:
        return Problem("protocol", exc.message, course_id)
    course, result = Course.try_open(bodies[0], store.registry, notify=False, compiled=compiled)
    if course is None:
        return Problem("replay", f"rejected on replay: {result.code}: {result.message}",
                       course_id, 1)
    if course.course_id != course_id:
        return Problem("replay", f"its course_id is {course.course_id!r}", course_id, 1)
    for seq, body in enumerate(bodies[1:], start=2):
        result = course.apply(body)
        if not result.ok:
            return Problem("replay", f"rejected on replay: {result.code}: {result.message}",
                           course_id, seq)
    derived = store._derived(course)
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
    return None
