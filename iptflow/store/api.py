"""The durable course store: SQLite through sqlite-utils.

>>> from iptflow.store import Store
>>> store = Store.open(":memory:")
>>> store.open_course({"type": "course_opened", "at": "2025-01-06T09:00:00Z",
...                    "course_id": "c-001", "protocol": "ipt-depression"}).ok
True
>>> store.apply("c-001", {"type": "treatment_started", "at": "2025-01-06T10:00:00Z"}).code
'guard_failed'
>>> store.apply("c-001", {"type": "measure_recorded", "at": "2025-01-06T10:00:00Z",
...                       "instrument": "phq9", "score": 18}, expected_seq=1).seq
2
>>> store.get("c-001").state, store.list()[0].last_seq
('assessment', 2)
>>> store.close()

Guarantees (docs/store.md has the details): every accepted event and its course's derived row
are written in one ``BEGIN IMMEDIATE`` transaction; a rejected event writes nothing; events are
append-only and hash-chained per course; a course loads by replaying its log on the resolved
protocol it was opened under.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlite_utils import Database

from iptflow.engine.course import Course
from iptflow.engine.machine import CompiledProtocol
from iptflow.engine.registry import Registry, default_registry
from iptflow.engine.results import Accepted, Rejection, Result
from iptflow.errors import EventRejected, ProtocolError
from iptflow.protocol.models import ResolvedProtocol
from iptflow.store.errors import (
    CorruptCourse,
    CourseExists,
    IdempotencyKeyReused,
    ImportRefused,
    MissingProtocol,
    NoDatabase,
    StoreError,
    UnknownCourse,
)
from iptflow.store.hashing import decode_event, encode_event, event_hash
from iptflow.store.migrations import migrations
from iptflow.store.rows import CourseRow, ImportResult, StoredEvent, VerifyReport

__all__ = [
    "CorruptCourse",
    "CourseExists",
    "CourseRow",
    "IdempotencyKeyReused",
    "ImportRefused",
    "ImportResult",
    "MissingProtocol",
    "NoDatabase",
    "Store",
    "StoreError",
    "StoredEvent",
    "UnknownCourse",
    "VerifyReport",
]

SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")


def utc_now() -> str:
    """The default ``clock``: the wall-clock time, for the ``recorded_at`` audit column only."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Store:
    """A SQLite database of courses. Open it with :meth:`open`; close it (or use ``with``).

    One ``Store`` belongs to one thread; any number of processes may open the same file.
    """

    def __init__(
        self,
        db: Database,
        path: str,
        registry: Registry | None,
        clock: Callable[[], str] | None,
        cache_size: int,
    ) -> None:
        self.db = db
        self.conn: sqlite3.Connection = db.conn
        self.path = path
        self._registry = registry
        self._clock = clock
        self._cache_size = cache_size
        # course_id -> (last_seq, last_hash, live Course); never handed out
        self._cache: OrderedDict[str, tuple[int, str, Course]] = OrderedDict()
        self._compiled: dict[str, CompiledProtocol] = {}

    # -- opening and closing ---------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str] = "iptflow.db",
        *,
        registry: Registry | None = None,
        synchronous: str = "FULL",
        create: bool = True,
        timeout: float = 30.0,
        clock: Callable[[], str] | None = utc_now,
        cache_size: int = 256,
    ) -> Store:
        """Open (and, with ``create``, create) a store; apply pending migrations.

        :param path: a database file, or ``":memory:"``.
        :param registry: the registry that resolves protocols of new courses and compiles stored
            ones (default: ``default_registry()``).
        :param synchronous: SQLite's ``PRAGMA synchronous``: ``FULL`` (default) makes every
            committed event survive a power failure; ``NORMAL`` survives a crash of the process
            but may lose the last commits on power failure; ``OFF`` is for throwaway data.
        :param create: with ``False`` a missing file raises :class:`NoDatabase` instead of
            creating an empty database (read-only commands use this).
        :param timeout: seconds to wait for another process's write lock before failing.
        :param clock: returns the ``recorded_at`` audit string of written events; ``None``
            stores no wall-clock time (deterministic files, e.g. for simulated data).
        :param cache_size: how many live courses to keep in memory to make ``apply`` fast.
        """
        name = os.fspath(path)
        sync = synchronous.upper()
        if sync not in SYNCHRONOUS:
            raise StoreError(
                f"synchronous must be one of {', '.join(SYNCHRONOUS)}, got {synchronous!r}"
            )
        memory = name == ":memory:"
        if not memory and not create and not os.path.exists(name):
            raise NoDatabase(f"no database at {name}", path=name)
        if not memory and os.path.isdir(name):
            raise StoreError(f"{name} is a directory, not a database file", path=name)
        try:
            conn = sqlite3.connect(name, timeout=timeout, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open database {name}: {exc}", path=name) from None
        try:
            if not memory:
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute(f"PRAGMA synchronous={sync}")
            db = Database(conn, execute_plugins=False)
            if migrations.pending(db):
                conn.execute("BEGIN IMMEDIATE")
                try:
                    migrations.apply(db)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StoreError(f"{name} is not a usable iptflow database: {exc}", path=name) from None
        return cls(db, name, registry, clock, cache_size)

    def close(self) -> None:
        """Close the connection (committed events are already durable)."""
        self._cache.clear()
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Store {self.path}>"

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            self._registry = default_registry()
        return self._registry

    # -- transactions ----------------------------------------------------------------------------
    @contextmanager
    def _write(self) -> Iterator[None]:
        """A write transaction: ``BEGIN IMMEDIATE`` takes the write lock before any read."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        try:
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise

    @contextmanager
    def _read(self) -> Iterator[None]:
        """A read transaction: every read inside it sees one snapshot of the database."""
        if self.conn.in_transaction:
            yield
            return
        self.conn.execute("BEGIN")
        try:
            yield
        finally:
            if self.conn.in_transaction:
                self.conn.execute("COMMIT")

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cursor = self.conn.execute(sql, params)
        keys = [d[0] for d in cursor.description]
        return [dict(zip(keys, row, strict=True)) for row in cursor.fetchall()]

    def _course_row(self, course_id: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM courses WHERE id = ?", (course_id,))
        return rows[0] if rows else None

    def _existing_row(self, course_id: str) -> dict[str, Any]:
        """The course's row; :class:`UnknownCourse` when the store does not hold it (reading)."""
        row = self._course_row(course_id)
        if row is None:
            raise UnknownCourse(f"no course {course_id!r} in {self.path}", course_id=course_id)
        return row

    def _event_rows(self, course_id: str) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM events WHERE course_id = ? ORDER BY seq", (course_id,))

    # -- protocols -------------------------------------------------------------------------------
    def _compiled_for(self, fingerprint: str, course_id: str) -> CompiledProtocol:
        """The compiled protocol stored under ``fingerprint`` (cached per store)."""
        compiled = self._compiled.get(fingerprint)
        if compiled is not None:
            return compiled
        rows = self._rows("SELECT resolved FROM protocols WHERE fingerprint = ?", (fingerprint,))
        if not rows:
            raise MissingProtocol(
                f"course {course_id}: its resolved protocol {fingerprint} is not in the store",
                course_id=course_id,
                fingerprint=fingerprint,
            )
        try:
            resolved = ResolvedProtocol.model_validate_json(rows[0]["resolved"])
        except ValidationError as exc:
            raise CorruptCourse(
                f"course {course_id}: the stored protocol {fingerprint} does not validate: "
                f"{exc.error_count()} problem(s), first: {exc.errors()[0]['msg']}",
                course_id=course_id,
                fingerprint=fingerprint,
            ) from None
        if resolved.fingerprint != fingerprint:
            raise CorruptCourse(
                f"course {course_id}: the stored protocol under {fingerprint} has fingerprint "
                f"{resolved.fingerprint} (it was changed after it was stored)",
                course_id=course_id,
                fingerprint=fingerprint,
            )
        try:
            compiled = self.registry.compile_resolved(resolved)
        except ProtocolError as exc:
            raise MissingProtocol(
                f"course {course_id}: its protocol {resolved.id} {resolved.version} cannot be "
                f"compiled with the installed plugins: {exc.message}",
                course_id=course_id,
                fingerprint=fingerprint,
            ) from None
        self._compiled[fingerprint] = compiled
        return compiled

    def _store_protocol(self, resolved: ResolvedProtocol) -> None:
        """Store a resolved protocol under its fingerprint unless it is already there."""
        if self.conn.execute(
            "SELECT 1 FROM protocols WHERE fingerprint = ?", (resolved.fingerprint,)
        ).fetchone():
            return
        self.conn.execute(
            "INSERT OR IGNORE INTO protocols (fingerprint, protocol_id, version, adaptations, "
            "resolved) VALUES (?, ?, ?, ?, ?)",
            (
                resolved.fingerprint,
                resolved.id,
                resolved.version,
                json.dumps(resolved.adaptations),
                resolved.canonical_json(),
            ),
        )

    # -- loading = replay ------------------------------------------------------------------------
    def _replay(self, row: dict[str, Any], events: list[dict[str, Any]]) -> Course:
        """Rebuild a course from its stored rows; check it against the course row."""
        course_id = row["id"]
        compiled = self._compiled_for(row["fingerprint"], course_id)
        if not events:
            raise CorruptCourse(f"course {course_id}: its log is empty", course_id=course_id)
        bodies = []
        for ev in events:
            try:
                bodies.append(decode_event(ev["body"]))
            except ValueError as exc:
                raise CorruptCourse(
                    f"course {course_id}: event {ev['seq']} is not valid JSON: {exc}",
                    course_id=course_id,
                    seq=ev["seq"],
                ) from None
        try:
            course = Course.replay(bodies, self.registry, notify=False, compiled=compiled)
        except EventRejected as exc:
            seq = _first_rejected(bodies, compiled, self.registry)
            raise CorruptCourse(
                f"course {course_id}: event {seq} is rejected on replay "
                f"({exc.rejection.code}: {exc.rejection.message})",
                course_id=course_id,
                seq=seq,
            ) from None
        last = events[-1]
        if course.seq != row["last_seq"] or last["seq"] != row["last_seq"]:
            raise CorruptCourse(
                f"course {course_id}: the course row says last seq {row['last_seq']}, "
                f"the log replays to {course.seq}",
                course_id=course_id,
            )
        if last["hash"] != row["last_hash"]:
            raise CorruptCourse(
                f"course {course_id}: the course row's last hash does not match event {last['seq']}",
                course_id=course_id,
                seq=last["seq"],
            )
        return course

    def get(self, course_id: str) -> Course:
        """The course, rebuilt by replaying its log on the protocol it was opened under.

        The returned :class:`~iptflow.Course` is the caller's own: changing it (``apply``) does
        not change the store; use :meth:`apply` for that. Raises :class:`UnknownCourse`,
        :class:`MissingProtocol` or :class:`CorruptCourse`.
        """
        with self._read():
            row = self._existing_row(course_id)
            events = self._event_rows(course_id)
        return self._replay(row, events)

    def _live(self, row: dict[str, Any]) -> Course:
        """The store's own in-memory course for ``row`` (from the cache if it is current).

        Called inside the write transaction, so ``row`` is the current state of the log.
        """
        course_id = row["id"]
        cached = self._cache.get(course_id)
        if cached is not None and cached[0] == row["last_seq"] and cached[1] == row["last_hash"]:
            self._cache.move_to_end(course_id)
            return cached[2]
        self._cache.pop(course_id, None)
        return self._replay(row, self._event_rows(course_id))

    def _remember(self, course_id: str, seq: int, hash_: str, course: Course) -> None:
        if self._cache_size <= 0:
            return
        self._cache[course_id] = (seq, hash_, course)
        self._cache.move_to_end(course_id)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    # -- writing ---------------------------------------------------------------------------------
    def _now(self) -> str | None:
        """``recorded_at`` for the events of one transaction (audit only; never decides)."""
        return self._clock() if self._clock is not None else None

    def _derived(self, course: Course) -> dict[str, Any]:
        outcome = course.outcome
        return {
            "state": course.state,
            "last_seq": course.seq,
            "sessions_held": course.sessions_held,
            "outcome_status": outcome.status if outcome else None,
            "open_reviews": json.dumps(course.open_reviews),
            "deviations": len(course.deviations),
        }

    def _insert_course(
        self,
        course: Course,
        events: Sequence[Mapping[str, Any]],
        synthetic: bool,
        idempotency_key: str | None = None,
    ) -> str:
        """Insert a new course (protocol row, course row, every event) in the open transaction."""
        resolved = course.protocol
        course_id = course.course_id
        self._store_protocol(resolved)
        derived = self._derived(course)
        opened = events[0]
        self.conn.execute(
            "INSERT INTO courses (id, fingerprint, protocol_id, protocol_version, adaptations, "
            "format, state, last_seq, last_hash, created_at, updated_at, synthetic, sessions_held, "
            "outcome_status, open_reviews, deviations) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, '', ?, ?, ?, ?, ?, ?, ?)",
            (
                course_id,
                resolved.fingerprint,
                resolved.id,
                resolved.version,
                json.dumps(resolved.adaptations),
                course.facts.format,
                derived["state"],
                derived["last_seq"],
                opened["at"],
                events[-1]["at"],
                1 if synthetic else 0,
                derived["sessions_held"],
                derived["outcome_status"],
                derived["open_reviews"],
                derived["deviations"],
            ),
        )
        self.conn.executemany(
            "INSERT INTO course_adaptations (course_id, adaptation) VALUES (?, ?)",
            [(course_id, a) for a in resolved.adaptations],
        )
        prev = resolved.fingerprint
        recorded_at = self._now()
        rows = []  # hash-chained first, then written with one executemany
        for seq, event in enumerate(events, start=1):
            key = idempotency_key if seq == 1 else None
            rows.append(_event_row(course_id, seq, encode_event(event), event, prev, key, recorded_at))
            prev = rows[-1][7]
        self.conn.executemany(_INSERT_EVENT, rows)
        self.conn.execute("UPDATE courses SET last_hash = ? WHERE id = ?", (prev, course_id))
        return prev

    def open_course(
        self,
        event: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
        synthetic: bool = False,
    ) -> Result:
        """Open a course from its ``course_opened`` event; store it with its resolved protocol.

        Returns :class:`~iptflow.Accepted` or a :class:`~iptflow.Rejection` (nothing written).
        A course id already in the store is rejected ``conflict``, unless ``idempotency_key``
        is the key the same event was stored with (then the original result is returned). An
        unknown protocol or adaptation raises :class:`~iptflow.errors.ProtocolError`.
        :param synthetic: mark the course as simulated data (research tooling).
        """
        etype = event.get("type") if isinstance(event, Mapping) else None
        body = _encode_or_rejection(event, etype)
        if isinstance(body, Rejection):
            return body
        course, result = Course.try_open(event, self.registry, notify=False)
        if course is None:
            return result
        course_id = course.course_id
        with self._write():
            existing = self._course_row(course_id)
            if existing is not None:
                repeated = self._repeated(existing, idempotency_key, body)
                if repeated is not None:
                    return repeated
                return Rejection(
                    "conflict",
                    f"course {course_id} already exists (opened at {existing['created_at']})",
                    "course_opened",
                )
            hash_ = self._insert_course(course, [event], synthetic, idempotency_key)
        self._remember(course_id, 1, hash_, course)
        return result

    def apply(
        self,
        course_id: str,
        event: Mapping[str, Any],
        *,
        expected_seq: int | None = None,
        idempotency_key: str | None = None,
    ) -> Result:
        """Apply one event to a stored course: :class:`~iptflow.Accepted` or a
        :class:`~iptflow.Rejection`.

        The event and the course's derived row are written in one transaction; a rejection
        writes nothing. Checks, in order: ``no_course``; a repeated ``idempotency_key`` returns
        the result the event got when it was stored (the same key with a different event raises
        :class:`IdempotencyKeyReused`); ``course_closed``; ``conflict`` when ``expected_seq``
        (the seq of the last event the caller saw) is not the course's last seq; then the
        engine's checks (SPEC order).
        """
        etype = event.get("type") if isinstance(event, Mapping) else None
        etype = etype if isinstance(etype, str) else None
        body = _encode_or_rejection(event, etype)
        if isinstance(body, Rejection):
            return body
        live: tuple[int, str, Course] | None = None  # what to cache once the transaction ends
        try:
            with self._write():
                row = self._course_row(course_id)
                if row is None:
                    return Rejection(
                        "no_course", f"no course {course_id!r}: it was never opened", etype
                    )
                repeated = self._repeated(row, idempotency_key, body)
                if repeated is not None:
                    return repeated
                course = self._live(row)
                live = (row["last_seq"], row["last_hash"], course)
                if course.is_closed:
                    result = course.apply(event)  # course_closed; changes nothing
                elif expected_seq is not None and expected_seq != row["last_seq"]:
                    result = Rejection(
                        "conflict",
                        f"course {course_id} changed since you read it: it is at event "
                        f"{row['last_seq']}, you expected {expected_seq}; reload it and retry",
                        etype,
                    )
                else:
                    live = None  # from here on the in-memory course may be ahead of the database
                    result = course.apply(event)
                    if result.ok:
                        live = (result.seq, self._append(row, course, result, body, event,
                                                         idempotency_key), course)
                    else:
                        live = (row["last_seq"], row["last_hash"], course)
        except _Conflict as exc:
            self._cache.pop(course_id, None)
            return Rejection(
                "conflict",
                f"course {course_id} changed while this event was being written ({exc}); "
                "reload it and retry",
                etype,
            )
        except BaseException:
            self._cache.pop(course_id, None)
            raise
        if live is not None:
            self._remember(course_id, *live)
        return result

    def _append(
        self,
        row: dict[str, Any],
        course: Course,
        result: Accepted,
        body: str,
        event: Mapping[str, Any],
        idempotency_key: str | None,
    ) -> str:
        """Write an accepted event and the course's derived row (inside the transaction)."""
        course_id = row["id"]
        event_row = _event_row(
            course_id, result.seq, body, event, row["last_hash"], idempotency_key, self._now()
        )
        hash_ = event_row[7]
        try:
            self.conn.execute(_INSERT_EVENT, event_row)
        except sqlite3.IntegrityError as exc:
            raise _Conflict(str(exc)) from exc
        derived = self._derived(course)
        self.conn.execute(
            "UPDATE courses SET state = ?, last_seq = ?, last_hash = ?, updated_at = ?, "
            "sessions_held = ?, outcome_status = ?, open_reviews = ?, deviations = ? "
            "WHERE id = ?",
            (
                derived["state"],
                derived["last_seq"],
                hash_,
                event["at"],
                derived["sessions_held"],
                derived["outcome_status"],
                derived["open_reviews"],
                derived["deviations"],
                course_id,
            ),
        )
        return hash_

    def _repeated(self, row: dict[str, Any], idempotency_key: str | None, body: str) -> Result | None:
        """The stored result of an event already written under this idempotency key, if any
        (the same key with a different event raises :class:`IdempotencyKeyReused`)."""
        if idempotency_key is None:
            return None
        stored = self._rows(
            "SELECT seq, body FROM events WHERE course_id = ? AND idempotency_key = ?",
            (row["id"], idempotency_key),
        )
        if not stored:
            return None
        _check_same_event(stored[0]["body"], body, idempotency_key, row["id"])
        return self._result_of(row, stored[0]["seq"])

    def _result_of(self, row: dict[str, Any], seq: int) -> Result:
        """The result the event at ``seq`` got when it was stored (replayed silently)."""
        course_id = row["id"]
        compiled = self._compiled_for(row["fingerprint"], course_id)
        events = self._rows(
            "SELECT body FROM events WHERE course_id = ? AND seq <= ? ORDER BY seq", (course_id, seq)
        )
        bodies = [decode_event(e["body"]) for e in events]
        course, result = Course.try_open(bodies[0], self.registry, notify=False, compiled=compiled)
        for body in bodies[1:]:
            if course is None or not result.ok:
                break
            result = course.apply(body)
        if not result.ok:
            raise CorruptCourse(
                f"course {course_id}: event {seq} is rejected on replay ({result.code})",
                course_id=course_id,
                seq=seq,
            )
        return result

    # -- reading ---------------------------------------------------------------------------------
    def exists(self, course_id: str) -> bool:
        return self._course_row(course_id) is not None

    def row(self, course_id: str) -> CourseRow:
        """The course's row (protocol, last seq, derived summary) without replaying it."""
        return CourseRow.from_row(self._existing_row(course_id))

    def history(self, course_id: str) -> list[StoredEvent]:
        """Every stored event of a course, in order, with its seq, hash chain and audit data."""
        with self._read():
            self._existing_row(course_id)
            rows = self._event_rows(course_id)
        return [StoredEvent.from_row(r) for r in rows]

    def list(
        self,
        *,
        state: str | None = None,
        protocol: str | None = None,
        adaptation: str | None = None,
        synthetic: bool | None = None,
    ) -> list[CourseRow]:
        """Course rows, by id, filtered by state, protocol id, adaptation and synthetic flag."""
        where, params = [], []
        if state is not None:
            where.append("state = ?")
            params.append(state)
        if protocol is not None:
            where.append("protocol_id = ?")
            params.append(protocol)
        if adaptation is not None:
            where.append(
                "id IN (SELECT course_id FROM course_adaptations WHERE adaptation = ?)"
            )
            params.append(adaptation)
        if synthetic is not None:
            where.append("synthetic = ?")
            params.append(1 if synthetic else 0)
        sql = "SELECT * FROM courses"
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [CourseRow.from_row(r) for r in self._rows(sql + " ORDER BY id", params)]

    def count(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM courses").fetchone()[0])

    # -- course files ----------------------------------------------------------------------------
    def export_course_file(self, course_id: str) -> str:
        """The course as a course file (SPEC §6): its stored events, one per line, as given."""
        with self._read():
            self._existing_row(course_id)
            rows = self._event_rows(course_id)
        return "".join(r["body"] + "\n" for r in rows)

    def import_course_file(
        self, path: str | os.PathLike[str], *, synthetic: bool = False, skip_rejected: bool = False
    ) -> ImportResult:
        """Replay a course file and store the course with its accepted events.

        A file that replays with an unexpected rejection or a failed expectation is refused
        (:class:`ImportRefused`, nothing written) unless ``skip_rejected`` is set: then the
        accepted events are stored and the others listed in ``skipped``. Events rejected as
        their ``expect_error`` said are always skipped. An unusable file raises
        :class:`~iptflow.errors.CourseFileError`; an id already stored :class:`CourseExists`.
        """
        from iptflow.engine.replay import replay_file

        name = os.fspath(path)
        result = replay_file(name, self.registry)
        if result.course is None:
            first = result.rejected[0] if result.rejected else {}
            raise ImportRefused(
                f"{name}: the course was not opened ({first.get('code')}: {first.get('message')})",
                file=name,
            )
        if result.exit_status != 0 and not skip_rejected:
            problems = [
                f"line {r['line']}: {r['code']}: {r['message']}" for r in result.rejected
            ] + [f"line {f['line']}: {f['message']}" for f in result.expectations_failed]
            raise ImportRefused(
                f"{name}: not imported: {problems[0]}"
                + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
                file=name,
            )
        course = result.course
        with self._write():
            if self._course_row(course.course_id) is not None:
                raise CourseExists(
                    f"{name}: course {course.course_id} is already in {self.path}",
                    course_id=course.course_id,
                )
            hash_ = self._insert_course(course, course.history, synthetic)
        self._remember(course.course_id, course.seq, hash_, course)
        return ImportResult(
            file=name,
            course_id=course.course_id,
            events=len(course.history),
            skipped=list(result.rejected),
            state=course.state,
        )

    def import_many(
        self,
        sources: Iterable[Course | Sequence[Mapping[str, Any]] | str | os.PathLike[str]],
        *,
        synthetic: bool = False,
    ) -> list[str]:
        """Store many courses in one transaction (all or none); return their ids in order.

        Each source is a :class:`~iptflow.Course` (its accepted history is stored as it is), a
        sequence of events (replayed: any rejection raises
        :class:`~iptflow.errors.EventRejected`), or a course file path (as
        :meth:`import_course_file` without ``skip_rejected``). A course id already stored,
        or given twice, raises :class:`CourseExists`.
        """
        from iptflow.engine.replay import replay_file

        ids: list[str] = []
        pending: list[Course] = []
        for source in sources:
            if isinstance(source, Course):
                course = source
            elif isinstance(source, (str, os.PathLike)):
                result = replay_file(os.fspath(source), self.registry)
                if result.course is None or result.exit_status != 0:
                    raise ImportRefused(
                        f"{os.fspath(source)}: not imported: it does not replay cleanly "
                        f"(iptflow replay {os.fspath(source)} shows why)",
                        file=os.fspath(source),
                    )
                course = result.course
            else:
                course = Course.replay(list(source), self.registry, notify=False)
            pending.append(course)
        seen: set[str] = set()
        with self._write():
            for course in pending:
                cid = course.course_id
                if cid in seen or self._course_row(cid) is not None:
                    raise CourseExists(f"course {cid} is already in {self.path}", course_id=cid)
                seen.add(cid)
                self._insert_course(course, course.history, synthetic)
                ids.append(cid)
        return ids

    # -- audit -----------------------------------------------------------------------------------
    def verify(self, *, integrity: bool = True) -> VerifyReport:
        """Check every course's hash chain, replay and derived row; see :mod:`iptflow.store_verify`."""
        from iptflow.store.verify import verify_store

        return verify_store(self, integrity=integrity)


_INSERT_EVENT = (
    "INSERT INTO events (course_id, seq, type, at, actor, body, prev_hash, hash, "
    "idempotency_key, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _event_row(
    course_id: str,
    seq: int,
    body: str,
    event: Mapping[str, Any],
    prev_hash: str,
    idempotency_key: str | None,
    recorded_at: str | None,
) -> tuple[Any, ...]:
    """An events row; its hash (chained on ``prev_hash``) is at index 7."""
    actor = event.get("actor")
    return (
        course_id,
        seq,
        event["type"],
        event["at"],
        actor if isinstance(actor, str) else None,
        body,
        prev_hash,
        event_hash(prev_hash, course_id, seq, body),
        idempotency_key,
        recorded_at,
    )


class _Conflict(Exception):
    """A lost race on the (course_id, seq) primary key: mapped to the ``conflict`` rejection."""


def _encode_or_rejection(event: Any, etype: str | None) -> str | Rejection:
    if not isinstance(event, Mapping):
        return Rejection("invalid_event", "an event must be a JSON object", None)
    try:
        return encode_event(event)
    except (TypeError, ValueError) as exc:
        return Rejection("invalid_event", f"the event is not storable as strict JSON: {exc}", etype)


def _check_same_event(stored_body: str, body: str, key: str, course_id: str) -> None:
    if decode_event(stored_body) != decode_event(body):
        raise IdempotencyKeyReused(
            f"course {course_id}: idempotency key {key!r} was already used for a different event",
            course_id=course_id,
            idempotency_key=key,
        )


def _first_rejected(
    bodies: list[Any], compiled: CompiledProtocol, registry: Registry
) -> int:
    """The seq of the first stored event that replay rejects (1-based)."""
    course, result = Course.try_open(bodies[0], registry, notify=False, compiled=compiled)
    if course is None:
        return 1
    for seq, body in enumerate(bodies[1:], start=2):
        if not course.apply(body).ok:
            return seq
    return len(bodies)

