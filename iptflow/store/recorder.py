"""The store's SQL: one :class:`Recorder` owns the SQLite connection and writes every statement.

The seam: the recorder knows tables, rows, transactions, the hash chain of written events and
the migrations, and nothing of courses or protocols beyond the values it is given;
:class:`~iptflow.store.api.Store` decides what to write (replay, idempotency, ``expected_seq``,
the derived course row) and calls the recorder inside one of its transactions. Reads return
plain rows (``dict`` per row); they are public, so ``Store.verify`` and research tooling read
through them instead of through the connection.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlite_utils import Database

from iptflow.protocol.models import ResolvedProtocol
from iptflow.store.connection import check_schema, connect, store_error
from iptflow.store.errors import DamagedStore, InvalidArgument, StoreReadOnly
from iptflow.store.migrations import migrations
from iptflow.store.pages import PageReads
from iptflow.store.recorder_migrations import MigrationRecords
from iptflow.store.snapshots import SnapshotRecords
from iptflow.store.sql import course_filter, statement
from iptflow.store.write_rows import (
    INSERT_COURSE,
    INSERT_EVENT,
    UPDATE_COURSE,
    CourseRows,
    course_rows,
    course_update,
    event_row,
    insert_protocol_row,
)

__all__ = [
    "SYNCHRONOUS", "UPDATE_COURSE", "CourseRows", "RecordConflict", "Recorder", "committed",
    "course_rows", "course_update", "event_row", "insert_protocol_row", "utc_now",
]

SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")

Row = dict[str, Any]


def utc_now() -> str:
    """The default clock: the wall-clock time, for the ``recorded_at`` audit column only."""
    # isoformat is strftime("%Y-%m-%dT%H:%M:%S.%f") with "+00:00" for the zone, and cheaper
    return datetime.now(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


_T = TypeVar("_T")


def _mapped(method: Callable[..., _T]) -> Callable[..., _T]:
    """A recorder method whose ``sqlite3`` errors are raised as the store's typed errors."""

    @functools.wraps(method)
    def wrapper(self: Recorder, *args: Any, **kwargs: Any) -> _T:
        with self.mapped():
            return method(self, *args, **kwargs)

    return wrapper


class RecordConflict(Exception):
    """A lost race: another writer stored that seq (or course) first, or the course row moved
    on; ``course_id`` names the course when the writer knows it."""

    def __init__(self, message: str, *, course_id: str | None = None) -> None:
        super().__init__(message)
        self.course_id = course_id


@contextmanager
def committed(recorder: Any, begin: str) -> Iterator[None]:
    """Run the block between ``begin`` and ``COMMIT`` on ``recorder``'s connection, under one
    ``recorder.mapped()`` (typed errors); a failure of the block or of the commit rolls back
    (``recorder._rollback()``) and is raised. Both backends' write transactions are this."""
    with recorder.mapped():
        conn = recorder.conn
        conn.execute(begin)
        try:
            yield
            conn.execute("COMMIT")
        except BaseException:
            recorder._rollback()
            raise


class Recorder(MigrationRecords, SnapshotRecords, PageReads):
    """One SQLite connection (WAL, foreign keys, migrated) and every SQL statement of the store
    (those of migration records in :mod:`~iptflow.store.recorder_migrations`)."""

    def __init__(
        self, db: Database, path: str, *, timeout: float = 30.0, readonly: bool = False
    ) -> None:
        self.db = db
        self.conn: sqlite3.Connection = db.conn
        self.path = path
        self.timeout = timeout
        self.readonly = readonly

    @classmethod
    def open(
        cls, name: str, *, synchronous: str, create: bool, timeout: float, readonly: bool = False
    ) -> Recorder:
        """Connect, set the pragmas, check the schema and apply pending migrations (in one
        transaction). ``readonly``: ``mode=ro``, no pragma that writes, no migration; see
        :mod:`iptflow.store.connection`."""
        sync = synchronous.upper() if isinstance(synchronous, str) else ""
        if sync not in SYNCHRONOUS:
            raise InvalidArgument(
                f"synchronous must be one of {', '.join(SYNCHRONOUS)}, got {synchronous!r}"
            )
        if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout < 0:
            raise InvalidArgument(f"timeout must be a number of seconds >= 0, got {timeout!r}")
        conn = connect(name, readonly=readonly, create=create, timeout=timeout)
        recorder = cls(Database(conn, execute_plugins=False), name, timeout=timeout, readonly=readonly)
        try:
            with recorder.mapped():
                if readonly:
                    conn.execute("PRAGMA query_only=ON")
                    check_schema(conn, name, readonly=True)
                    return recorder
                if name != ":memory:":
                    conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA foreign_keys=ON")
                conn.execute(f"PRAGMA synchronous={sync}")
                if check_schema(conn, name, readonly=False):
                    with recorder.write():
                        if migrations.pending(recorder.db):  # another opener may have applied them
                            migrations.apply(recorder.db)
        except BaseException:
            conn.close()
            raise
        return recorder

    @contextmanager
    def mapped(self) -> Iterator[None]:
        """Turn a ``sqlite3`` error raised inside into the store's typed error
        (:func:`~iptflow.store.connection.store_error`), with the time the block waited."""
        started = time.monotonic()
        try:
            yield
        except sqlite3.Error as exc:
            raise store_error(
                exc, self.path, waited=time.monotonic() - started, timeout=self.timeout
            ) from None

    def close(self) -> None:
        self.conn.close()

    # -- transactions ----------------------------------------------------------------------------
    @contextmanager
    def write(self) -> Iterator[None]:
        """A write transaction: ``BEGIN IMMEDIATE`` takes the write lock before any read.

        A ``sqlite3`` error inside (or on ``BEGIN``/``COMMIT``) rolls back and is raised as the
        store's typed error; a store opened read-only raises :class:`StoreReadOnly` at once.
        """
        if self.readonly:
            raise StoreReadOnly(f"{self.path} was opened read-only; nothing was stored", path=self.path)
        with committed(self, "BEGIN IMMEDIATE"):
            yield

    def _rollback(self) -> None:
        """Roll back the open transaction, if any (SQLite may already have rolled it back, e.g.
        on a full disk); a failing rollback leaves the original error to be raised."""
        if self.conn.in_transaction:
            with suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")

    @contextmanager
    def read(self) -> Iterator[None]:
        """A read transaction: every read inside it sees one snapshot (nests in any transaction)."""
        if self.conn.in_transaction:
            yield
            return
        with self.mapped():
            self.conn.execute("BEGIN")
        try:
            with self.mapped():
                yield
        finally:
            if self.conn.in_transaction:
                with self.mapped():
                    self.conn.execute("COMMIT")

    @_mapped
    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """The rows of one SELECT, each as a dict."""
        cursor = self.conn.execute(sql, params)
        keys = [d[0] for d in cursor.description]
        return [dict(zip(keys, row, strict=True)) for row in cursor.fetchall()]

    # -- reading ---------------------------------------------------------------------------------
    @_mapped
    def course_row(self, course_id: str) -> Row | None:
        rows = self.rows("SELECT * FROM courses WHERE id = ?", (course_id,))
        return rows[0] if rows else None

    @_mapped
    def course_rows(
        self,
        *,
        state: str | None = None,
        protocol: str | None = None,
        adaptation: str | None = None,
        synthetic: bool | None = None,
    ) -> list[Row]:
        """Course rows by id, filtered by state, protocol (``id``: every version, or
        ``id@version``), adaptation and synthetic flag."""
        if adaptation is not None:
            self._check_adaptation_rows(adaptation)
        sql, params = course_filter(
            state=state, protocol=protocol, adaptation=adaptation, synthetic=synthetic
        )
        return self.rows(statement(self, sql), params)

    def _check_adaptation_rows(self, adaptation: str) -> None:
        """``course_adaptations`` must list exactly the courses whose ``adaptations`` column
        names ``adaptation``; a disagreement is damage (:class:`DamagedStore`), not a count."""
        indexed = self.conn.execute(
            "SELECT count(*) FROM course_adaptations WHERE adaptation = ? "
            "AND course_id IN (SELECT id FROM courses)", (adaptation,)
        ).fetchone()[0]
        stored = self.conn.execute(
            "SELECT count(*) FROM courses, json_each(courses.adaptations) WHERE value = ?",
            (adaptation,),
        ).fetchone()[0]
        if indexed != stored:
            raise DamagedStore(
                f"{self.path} is damaged: {stored} course(s) have adaptation {adaptation!r} but "
                f"course_adaptations lists {indexed} (iptflow verify names them)",
                path=self.path, adaptation=adaptation,
            )

    @_mapped
    def course_ids(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT id FROM courses ORDER BY id")]

    @_mapped
    def count(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM courses").fetchone()[0])

    @_mapped
    def events(self, course_id: str, upto: int | None = None) -> list[Row]:
        """A course's event rows in seq order (only seq <= ``upto`` when given)."""
        if upto is None:
            return self.rows("SELECT * FROM events WHERE course_id = ? ORDER BY seq", (course_id,))
        return self.rows(
            "SELECT * FROM events WHERE course_id = ? AND seq <= ? ORDER BY seq", (course_id, upto)
        )

    @_mapped
    def event_with_key(self, course_id: str, idempotency_key: str) -> Row | None:
        """The ``seq`` and ``body`` of the course's event stored under this idempotency key."""
        rows = self.rows(
            "SELECT seq, body FROM events WHERE course_id = ? AND idempotency_key = ?",
            (course_id, idempotency_key),
        )
        return rows[0] if rows else None

    @_mapped
    def orphan_course_ids(self) -> list[str]:
        """Course ids that have events but no course row."""
        sql = "SELECT DISTINCT course_id FROM events WHERE course_id NOT IN (SELECT id FROM courses)"
        return [r[0] for r in self.conn.execute(sql)]

    @_mapped
    def fingerprints(self) -> list[str]:
        """The fingerprints of every stored resolved protocol."""
        return [r[0] for r in self.conn.execute("SELECT fingerprint FROM protocols ORDER BY fingerprint")]

    @_mapped
    def protocol_json(self, fingerprint: str) -> str | None:
        """The canonical JSON of the resolved protocol stored under ``fingerprint``."""
        row = self.conn.execute(
            "SELECT resolved FROM protocols WHERE fingerprint = ?", (fingerprint,)
        ).fetchone()
        return None if row is None else row[0]

    @_mapped
    def integrity_check(self) -> list[str]:
        """SQLite's ``PRAGMA integrity_check``: ``["ok"]`` for a sound file."""
        return [str(r[0]) for r in self.conn.execute("PRAGMA integrity_check").fetchall()]

    @_mapped
    def tables(self) -> set[str]:
        """The names of the database's tables."""
        return {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    @_mapped
    def adaptation_rows(self) -> dict[str, list[str]]:
        """``course_adaptations`` as course id -> its adaptations (sorted), courses by id."""
        out: dict[str, list[str]] = {}
        for course_id, adaptation in self.conn.execute(
            "SELECT course_id, adaptation FROM course_adaptations ORDER BY course_id, adaptation"
        ):
            out.setdefault(course_id, []).append(adaptation)
        return out

    # -- writing (inside :meth:`write`) ----------------------------------------------------------
    @_mapped
    def insert_protocol(self, resolved: ResolvedProtocol) -> None:
        """Store a resolved protocol under its fingerprint unless it is already there."""
        if self.conn.execute(
            "SELECT 1 FROM protocols WHERE fingerprint = ?", (resolved.fingerprint,)
        ).fetchone():
            return
        self.conn.execute(
            "INSERT OR IGNORE INTO protocols (fingerprint, protocol_id, version, adaptations, "
            "resolved) VALUES (?, ?, ?, ?, ?)",
            insert_protocol_row(resolved),
        )

    @_mapped
    def insert_course(
        self,
        course_id: str,
        resolved: ResolvedProtocol,
        course_format: str,
        derived: Mapping[str, Any],
        events: Sequence[tuple[str, Mapping[str, Any]]],
        *,
        synthetic: bool,
        idempotency_key: str | None,
        recorded_at: str | None,
    ) -> str:
        """Insert a new course: its row, its adaptations and its events ``(body, event)``,
        hash-chained from the protocol's fingerprint (:func:`course_rows`); return the last
        event's hash.

        ``derived`` holds the course row's derived columns (see ``loading.derived_columns``);
        ``idempotency_key`` belongs to the first event.
        """
        rows = course_rows(course_id, resolved, course_format, derived, events,
                           synthetic=synthetic, idempotency_key=idempotency_key,
                           recorded_at=recorded_at)
        self._insert_rows([rows])
        return rows.last_hash

    @_mapped
    def insert_courses(self, protocols: Sequence[tuple[Any, ...]], courses: Sequence[CourseRows]) -> None:
        """Insert new courses (each :func:`course_rows`) and the protocol rows
        (:func:`insert_protocol_row`) they need, with one statement per table; raise
        :class:`RecordConflict` (its ``course_id``: the first in order) when a course is already
        stored or given twice, before writing anything."""
        ids = [c.course[0] for c in courses]
        taken = {r[0] for r in self.conn.execute(
            "SELECT id FROM courses WHERE id IN (SELECT value FROM json_each(?))", (json.dumps(ids),))}
        seen: set[str] = set()
        for course_id in ids:
            if course_id in taken or course_id in seen:
                raise RecordConflict(f"course {course_id} is already stored", course_id=course_id)
            seen.add(course_id)
        self.conn.executemany(
            "INSERT OR IGNORE INTO protocols (fingerprint, protocol_id, version, adaptations, "
            "resolved) VALUES (?, ?, ?, ?, ?)", protocols)
        self._insert_rows(courses)

    def _insert_rows(self, courses: Sequence[CourseRows]) -> None:
        """The rows of new courses, one executemany per table (events after their courses)."""
        self.conn.executemany(INSERT_COURSE, [c.course for c in courses])
        self.conn.executemany(
            "INSERT INTO course_adaptations (course_id, adaptation) VALUES (?, ?)",
            [a for c in courses for a in c.adaptations],
        )
        self.conn.executemany(INSERT_EVENT, [e for c in courses for e in c.events])

    @_mapped
    def append_event(
        self,
        row: Mapping[str, Any],
        body: str,
        event: Mapping[str, Any],
        derived: Mapping[str, Any],
        *,
        idempotency_key: str | None,
        recorded_at: str | None,
    ) -> str:
        """Append the next event of the course whose row was ``row`` (``id``, ``last_seq``,
        ``last_hash``) and update that row to ``derived``; return the event's hash. Raises
        :class:`RecordConflict` (write nothing more: roll back) when the row is no longer at
        that seq and hash, or another writer stored that seq first."""
        course_id = row["id"]
        seq = derived["last_seq"]
        values = event_row(
            course_id, seq, body, event, row["last_hash"], idempotency_key, recorded_at
        )
        hash_ = values[7]
        if self.conn.execute(
            UPDATE_COURSE, course_update(derived, hash_, event["at"], row)
        ).rowcount != 1:
            raise RecordConflict(f"course {course_id} is no longer at event {row['last_seq']}")
        try:
            self.conn.execute(INSERT_EVENT, values)
        except sqlite3.IntegrityError as exc:
            raise RecordConflict(str(exc)) from exc
        return hash_

    # -- research tables -------------------------------------------------------------------------
    @_mapped
    def insert_simulation_run(
        self, protocol: str, adaptations: str, fingerprint: str, n: int, seed: int, model: str
    ) -> int:
        """Add a synthetic run to ``simulation_runs`` (migration m003) under the next run number;
        ``adaptations`` and ``model`` are JSON text."""
        run = int(self.conn.execute("SELECT COALESCE(MAX(run), 0) + 1 FROM simulation_runs").fetchone()[0])
        self.conn.execute(
            "INSERT INTO simulation_runs (run, protocol, adaptations, fingerprint, n, seed, model, "
            "synthetic) VALUES (?, ?, ?, ?, ?, ?, ?, 1)",
            (run, protocol, adaptations, fingerprint, n, seed, model),
        )
        return run

    @_mapped
    def simulation_runs(self) -> list[Row]:
        return self.rows("SELECT * FROM simulation_runs ORDER BY run")
