"""Baselines: the least a program could do for the same work.

* :func:`replay` parses every event with the same pydantic models as the engine (the compiled
  protocol's discriminated union, called through its core validator as the engine does) and
  steps a plain dict FSM ``state -> event -> dest``: no guards, no facts, no deviations, no
  outcome, no history.
* :func:`open_course` parses ``course_opened`` and makes a dict for the course.
* :class:`RawSQLite` appends one row per transaction, and imports rows with one
  ``executemany`` in one transaction, with plain ``sqlite3`` and the same pragmas as the
  store.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from iptflow.engine.registry import Registry


class DictFSM:
    """A protocol's transitions as ``{state: {event: dest or ""}}``, and its event parser."""

    __slots__ = ("initial", "table", "validate")

    def __init__(self, registry: Registry, protocol: str, adaptations: list[str]) -> None:
        compiled = registry.compile(protocol, adaptations)
        self.validate = compiled.adapter.validator.validate_python
        self.initial = compiled.protocol.initial_state
        self.table: dict[str, dict[str, str]] = {
            state: {event: routes[-1].dest or "" for event, routes in events.items()}
            for state, events in compiled.allowed.items()
        }


def replay(courses: Iterable[list[dict[str, Any]]], registry: Registry) -> tuple[int, int]:
    """Parse and step every event of every course; return (accepted, rejected)."""
    machines: dict[tuple[str, tuple[str, ...]], DictFSM] = {}
    accepted = rejected = 0
    for course in courses:
        first = course[0]
        key = (first["protocol"], tuple(first.get("adaptations", ())))
        fsm = machines.get(key)
        if fsm is None:
            fsm = machines[key] = DictFSM(registry, key[0], list(key[1]))
        validate = fsm.validate
        table = fsm.table
        state = fsm.initial
        try:
            validate(first)
        except ValidationError:
            rejected += len(course)
            continue
        accepted += 1
        for raw in course[1:]:
            try:
                event = validate(raw)
            except ValidationError:
                rejected += 1
                continue
            dest = table[state].get(event.type)
            if dest is None:
                rejected += 1
                continue
            accepted += 1
            if dest:
                state = dest
                if state not in table:  # a final state
                    break
    return accepted, rejected


def open_course(raw: dict[str, Any], fsm: DictFSM) -> dict[str, Any]:
    """The baseline's course: a parsed opening event and a state."""
    return {"opened": fsm.validate(raw), "state": fsm.initial}


SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    course_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    at TEXT NOT NULL,
    actor TEXT,
    body TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    idempotency_key TEXT,
    recorded_at TEXT,
    PRIMARY KEY (course_id, seq)
)
"""
INSERT = (
    "INSERT INTO events (course_id, seq, type, at, actor, body, prev_hash, hash, idempotency_key, "
    "recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
HASH = "sha256:" + "0" * 64  # the store computes hashes; the baseline writes a constant
Row = tuple[str, int, str, str, Any, str, str, str, None, None]


def row(course_id: str, seq: int, event: dict[str, Any], body: str | None = None) -> Row:
    """The row the store's events table gets for an event (with constant hashes)."""
    actor = event.get("actor")
    if body is None:
        body = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    return (course_id, seq, event["type"], event["at"], actor, body, HASH, HASH, None, None)


class RawSQLite:
    """Plain sqlite3 with the store's pragmas: an events table like the store's, nothing else."""

    def __init__(self, path: Path, synchronous: str = "FULL") -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.conn.execute(f"PRAGMA synchronous={synchronous}")
        self.conn.execute(SCHEMA)

    def append(self, course_id: str, seq: int, event: dict[str, Any]) -> None:
        """One event in one transaction."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(INSERT, row(course_id, seq, event))
        conn.execute("COMMIT")

    def insert_many(self, rows: Iterable[Row]) -> None:
        """Every row with one executemany in one transaction."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(INSERT, rows)
        conn.execute("COMMIT")

    def load(self, course_id: str) -> list[Any]:
        """A course's event bodies, parsed."""
        return [
            json.loads(body)
            for (body,) in self.conn.execute(
                "SELECT body FROM events WHERE course_id = ? ORDER BY seq", (course_id,)
            )
        ]

    def close(self) -> None:
        self.conn.close()


class StoreSQL:
    """The store's own SQL for one appended event, without the engine, as ``Store.apply``
    writes to a course it has cached: in one transaction, update the course row where it is
    still at the seq and hash known, then insert the event row (the store's schema, indexes
    and triggers, opened through Store.open so the migrations are the store's)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def append(self, course_id: str, seq: int, event: dict[str, Any]) -> None:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "UPDATE courses SET state = ?, last_seq = ?, last_hash = ?, updated_at = ?, "
            "sessions_held = ?, outcome_status = ?, open_reviews = ?, deviations = ? "
            "WHERE id = ? AND last_seq = ? AND last_hash <> ?",  # the store's has last_hash = ?
            ("middle", seq, HASH, event["at"], seq // 3, None, "[]", 0, course_id, seq - 1, ""),
        )
        conn.execute(INSERT, row(course_id, seq, event))
        conn.execute("COMMIT")


def rows_of_files(paths: Iterable[Path]) -> list[Row]:
    """Read course files and make the store's rows of their events (JSON parsed per line)."""
    rows: list[Row] = []
    for path in paths:
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        events = [json.loads(line) for line in lines]
        course_id = events[0]["course_id"]
        for seq, (event, body) in enumerate(zip(events, lines, strict=True), start=1):
            rows.append(row(course_id, seq, event, body))
    return rows


def ingest(stream: Path, db: Path, registry: Registry) -> int:
    """Read a stream of courses (JSON Lines, back to back), parse and step each with the dict
    FSM, and write every event's row with one executemany in one transaction (WAL,
    synchronous=NORMAL, as ``iptflow simulate`` writes). Returns the number of courses."""
    courses: list[list[dict[str, Any]]] = []
    lines: list[list[str]] = []
    with stream.open(encoding="utf-8") as handle:
        for text in handle:
            event = json.loads(text)
            if event["type"] == "course_opened":
                courses.append([])
                lines.append([])
            courses[-1].append(event)
            lines[-1].append(text.rstrip("\n"))
    replay(courses, registry)
    rows = [
        row(course[0]["course_id"], seq, event, body)
        for course, bodies in zip(courses, lines, strict=True)
        for seq, (event, body) in enumerate(zip(course, bodies, strict=True), start=1)
    ]
    raw = RawSQLite(db, "NORMAL")
    raw.insert_many(rows)
    raw.close()
    return len(courses)
