"""Course snapshots (table ``snapshots``, migration m006): a course's derived state kept beside
its log, so that loading it is a read of its rows plus the events after the snapshot instead
of a replay of every event (docs/store.md#snapshots).

One row per course, replaced in the same transaction as the event it was taken after
(``Store(snapshot_every=N)``: after every N-th event, and whenever a course is stored whole).
A row holds the seq and the event hash it was taken at, what wrote it (the snapshot
``format``, the ``engine`` version, the protocol ``fingerprint``), the snapshot's JSON
``body`` (``Course.to_snapshot()``) and a ``digest`` binding all of these to the course id.

A snapshot is only a shortcut: :func:`snapshot_seq` refuses one that does not match the log
(its seq is past the last event, or the event at its seq has another hash), whose digest does
not match its row, or that another format, engine version or protocol wrote;
:func:`restored_course` one whose body does not restore (:func:`usable_snapshot` is both); the
course is then loaded by replaying its log, exactly as without a snapshot. ``verify`` always
replays from the first event, and reports a usable snapshot that
disagrees with that replay (kind ``snapshot``).

:class:`SnapshotRecords` is the SQLite recorder's part (it inherits it),
:class:`PgSnapshotRecords` the PostgreSQL twin's.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from iptflow.engine.course import Course
from iptflow.engine.machine import CompiledProtocol
from iptflow.engine.snapshot import ENGINE_VERSION, SNAPSHOT_FORMAT, InvalidSnapshot

__all__ = [
    "M006_SNAPSHOTS",
    "LogRow",
    "PgSnapshotRecords",
    "SnapshotRecords",
    "restored_course",
    "snapshot_seq",
    "snapshot_values",
    "usable_snapshot",
]

Row = dict[str, Any]
#: An event row as loading reads it: ``(seq, hash, body)``.
LogRow = tuple[int, str, str]

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
_COLUMNS = "course_id, seq, hash, format, engine, fingerprint, body, digest"
_LOG_COLUMNS = "seq, hash, body"

#: Migration m006 on PostgreSQL (the SQLite store's ``m006_snapshots``).
M006_SNAPSHOTS = (
    """CREATE TABLE snapshots (
        course_id text PRIMARY KEY,
        seq bigint NOT NULL,
        hash text NOT NULL,
        format integer NOT NULL,
        engine text NOT NULL,
        fingerprint text NOT NULL,
        body text NOT NULL,
        digest text NOT NULL
    )""",
)


def _digest(course_id: str, seq: int, hash_: str, fmt: int, engine: str, fingerprint: str,
            body: str) -> str:
    text = "\n".join((course_id, str(seq), hash_, str(fmt), engine, fingerprint, body))
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def snapshot_values(course: Course, hash_: str) -> tuple[Any, ...] | None:
    """The ``snapshots`` row of ``course`` taken after its event ``course.seq`` (whose hash is
    ``hash_``), in :data:`_COLUMNS` order; ``None`` when a plugin left facts that are not JSON
    data (the course then loads by replay)."""
    data = course.to_snapshot()
    try:
        body = _ENCODER.encode(data)
    except (TypeError, ValueError):
        return None
    fingerprint = data["fingerprint"]
    return (course.course_id, course.seq, hash_, SNAPSHOT_FORMAT, ENGINE_VERSION, fingerprint,
            body, _digest(course.course_id, course.seq, hash_, SNAPSHOT_FORMAT, ENGINE_VERSION,
                          fingerprint, body))


def usable_snapshot(
    snapshot: Mapping[str, Any] | None,
    events: Sequence[Mapping[str, Any]],
    bodies: list[Any],
    compiled: CompiledProtocol,
) -> Course | None:
    """The course restored from ``snapshot`` (a ``snapshots`` row) with ``bodies[:seq]`` as its
    history, or ``None`` when the snapshot cannot be used (see the module docstring):
    ``events`` are the course's event rows and ``bodies`` their decoded bodies, in order."""
    if snapshot is None or not events:
        return None
    course_id = events[0]["course_id"]
    seq = snapshot_seq(snapshot, course_id, [e["hash"] for e in events], compiled)
    if seq is None:
        return None
    return restored_course(snapshot, course_id, compiled, bodies[:seq])


def snapshot_seq(
    snapshot: Mapping[str, Any], course_id: str, hashes: Sequence[str], compiled: CompiledProtocol
) -> int | None:
    """The seq the ``snapshots`` row ``snapshot`` was taken at if its row fits the log whose
    event hashes are ``hashes`` (in seq order, from event 1), what this engine writes and
    ``compiled``; else ``None``. Its body is checked by :func:`restored_course`."""
    seq = snapshot["seq"]
    if type(seq) is not int or not 1 <= seq <= len(hashes):
        return None
    if (snapshot["hash"] != hashes[seq - 1] or snapshot["format"] != SNAPSHOT_FORMAT
            or snapshot["engine"] != ENGINE_VERSION
            or snapshot["fingerprint"] != compiled.protocol.fingerprint):
        return None
    expected = _digest(course_id, seq, snapshot["hash"], SNAPSHOT_FORMAT, ENGINE_VERSION,
                       snapshot["fingerprint"], snapshot["body"])
    return seq if snapshot["digest"] == expected else None


def restored_course(
    snapshot: Mapping[str, Any], course_id: str, compiled: CompiledProtocol, history: Any
) -> Course | None:
    """The course the body of ``snapshot`` (whose row :func:`snapshot_seq` accepted) restores,
    with ``history`` (its events up to the snapshot: a list, or a
    :class:`~iptflow.engine.history.LazyHistory`); ``None`` if the body does not restore to
    this course at that seq."""
    try:
        data = json.loads(snapshot["body"])  # its digest matched: what this store wrote
        course = Course.from_snapshot(compiled, data, history)
    except (ValueError, InvalidSnapshot):
        return None
    if course.seq != snapshot["seq"] or course.course_id != course_id:
        return None
    return course


class SnapshotRecords:
    """The SQLite recorder's reads and writes of ``snapshots``; a store opened read-only before
    migration m006 was applied reads as having no snapshot."""

    conn: sqlite3.Connection
    _has_snapshots_table: bool = False

    def _snapshots_table(self) -> bool:
        if not self._has_snapshots_table:  # once there, it stays (read-only opens may lack it)
            with self.mapped():  # type: ignore[attr-defined]
                self._has_snapshots_table = self.conn.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'snapshots'"
                ).fetchone() is not None
        return self._has_snapshots_table

    def snapshot(self, course_id: str) -> Row | None:
        """The course's ``snapshots`` row, if it has one."""
        if not self._snapshots_table():
            return None
        rows = self.rows(  # type: ignore[attr-defined]
            f"SELECT {_COLUMNS} FROM snapshots WHERE course_id = ?", (course_id,)
        )
        return rows[0] if rows else None

    def log_rows(self, course_id: str) -> list[LogRow]:
        """A course's event rows in seq order with only what loading reads: ``(seq, hash,
        body)`` tuples (:func:`~iptflow.store.loading.load_log`)."""
        with self.mapped():  # type: ignore[attr-defined]
            return self.conn.execute(
                f"SELECT {_LOG_COLUMNS} FROM events WHERE course_id = ? ORDER BY seq", (course_id,)
            ).fetchall()

    def put_snapshots(self, values: Sequence[tuple[Any, ...]]) -> None:
        """Store (or replace) snapshots, each a :func:`snapshot_values` row (inside a write)."""
        if values:
            with self.mapped():  # type: ignore[attr-defined]
                self.conn.executemany(
                    f"INSERT OR REPLACE INTO snapshots ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    values,
                )


class PgSnapshotRecords:
    """The PostgreSQL twin of :class:`SnapshotRecords`."""

    conn: Any
    _has_snapshots_table: bool = False

    def _snapshots_table(self) -> bool:
        if not self._has_snapshots_table:
            self._has_snapshots_table = "snapshots" in self.tables()  # type: ignore[attr-defined]
        return self._has_snapshots_table

    def snapshot(self, course_id: str) -> Row | None:
        """The course's ``snapshots`` row, if it has one."""
        if not self._snapshots_table():
            return None
        rows = self.rows(  # type: ignore[attr-defined]
            f"SELECT {_COLUMNS} FROM snapshots WHERE course_id = %s", (course_id,)
        )
        return rows[0] if rows else None

    def log_rows(self, course_id: str) -> list[LogRow]:
        """A course's ``(seq, hash, body)`` event rows in seq order (what loading reads)."""
        rows = self.rows(  # type: ignore[attr-defined]
            f"SELECT {_LOG_COLUMNS} FROM events WHERE course_id = %s ORDER BY seq", (course_id,)
        )
        return [(r["seq"], r["hash"], r["body"]) for r in rows]

    def put_snapshots(self, values: Sequence[tuple[Any, ...]]) -> None:
        """Store (or replace) snapshots, each a :func:`snapshot_values` row (inside a write)."""
        if values:
            with self.mapped():  # type: ignore[attr-defined]
                self.conn.cursor().executemany(
                    f"INSERT INTO snapshots ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
                    "ON CONFLICT (course_id) DO UPDATE SET seq = EXCLUDED.seq, "
                    "hash = EXCLUDED.hash, format = EXCLUDED.format, engine = EXCLUDED.engine, "
                    "fingerprint = EXCLUDED.fingerprint, body = EXCLUDED.body, "
                    "digest = EXCLUDED.digest",
                    values,
                )
