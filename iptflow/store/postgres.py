"""The PostgreSQL store's SQL: :class:`PgRecorder` has the methods of
:class:`~iptflow.store.recorder.Recorder` (the same reads, writes, transactions and hash
chain) over one psycopg 3 connection, so :class:`~iptflow.store.api.Store` decides exactly as
it does on SQLite. ``Store.open("postgresql://...")`` opens one; psycopg is the ``postgres``
extra (``pip install 'iptflow[postgres]'``).

Concurrency (docs/store.md): a write transaction runs at ``READ COMMITTED``; inside it the
course row is read with ``SELECT ... FOR UPDATE``, so writers of one course queue on that row
and each sees the row its predecessor committed, while writers of different courses never
wait on each other. A new course's row is inserted with ``ON CONFLICT DO NOTHING``, and the
``(course_id, seq)`` primary key backs the row lock: either lost race is
:class:`~iptflow.store.recorder.RecordConflict`, which the Store reports as ``conflict``.
Reads that need one snapshot (``Store.get``, ``verify``) run in a ``REPEATABLE READ``
transaction. ``timeout`` is PostgreSQL's ``lock_timeout``: a lock held longer raises
:class:`StoreBusy`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any

from iptflow.protocol.models import ResolvedProtocol
from iptflow.store.connection import schema_pending
from iptflow.store.errors import (
    DamagedStore,
    InvalidArgument,
    NoDatabase,
    StoreBusy,
    StoreError,
    StoreFull,
    StoreReadOnly,
)
from iptflow.store.migrations import KNOWN_MIGRATIONS
from iptflow.store.pages import PgPageReads
from iptflow.store.postgres_migrations import PgMigrationRecords
from iptflow.store.postgres_schema import MIGRATIONS, MIGRATIONS_TABLE
from iptflow.store.recorder import SYNCHRONOUS, RecordConflict, committed
from iptflow.store.snapshots import PgSnapshotRecords
from iptflow.store.sql import course_filter, statement
from iptflow.store.urls import display_url
from iptflow.store.write_rows import (
    UPDATE_COURSE,
    CourseRows,
    course_rows,
    course_update,
    event_row,
    insert_protocol_row,
)

try:  # the optional extra: the SQLite store works without it
    import psycopg
    from psycopg import errors as pg_errors
    from psycopg.rows import dict_row
except ImportError:  # pragma: no cover - exercised where the extra is not installed
    psycopg = None  # type: ignore[assignment]

__all__ = ["PgRecorder", "pg_error"]

Row = dict[str, Any]

_EVENT_COLUMNS = (
    "course_id, seq, type, at, actor, body, prev_hash, hash, idempotency_key, recorded_at"
)
_INSERT_EVENT = f"INSERT INTO events ({_EVENT_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
_COPY_EVENTS = f"COPY events ({_EVENT_COLUMNS}) FROM STDIN"
_PIPELINED = 200  # a course with more events sends them through COPY
_INSERT_COURSE = (
    "INSERT INTO courses (id, fingerprint, protocol_id, protocol_version, adaptations, format, "
    "state, last_seq, last_hash, created_at, updated_at, synthetic, sessions_held, "
    "outcome_status, open_reviews, deviations) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (id) DO NOTHING"
)
_UPDATE_COURSE = UPDATE_COURSE.replace("?", "%s")


def pg_error(exc: Exception, where: str, *, waited: float = 0.0, timeout: float | None = None) -> StoreError:
    """The store's typed error for a psycopg error on the database ``where`` names."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, pg_errors.LockNotAvailable | pg_errors.DeadlockDetected
                  | pg_errors.SerializationFailure | pg_errors.QueryCanceled):
        waited_s = round(waited, 3)
        return StoreBusy(
            f"{where}: a lock is held by another connection: waited {waited_s:g} s"
            + (f" (timeout {timeout:g} s)" if timeout is not None else "")
            + f" ({text}); try again when the other writer has finished",
            path=where, waited=waited_s, timeout=timeout,
        )
    if isinstance(exc, pg_errors.DiskFull | pg_errors.OutOfMemory):
        return StoreFull(f"{where}: the server is out of space ({text}); nothing of this write "
                         "was stored", path=where)
    if isinstance(exc, pg_errors.InsufficientPrivilege | pg_errors.ReadOnlySqlTransaction):
        return StoreReadOnly(f"{where} cannot be written by this role ({text}); nothing was stored",
                             path=where)
    if isinstance(exc, pg_errors.InvalidCatalogName) or (
        "database" in text and "does not exist" in text  # at connect: no sqlstate
    ):
        return NoDatabase(f"no database at {where} ({text})", path=where)
    if isinstance(exc, pg_errors.UndefinedTable | pg_errors.UndefinedColumn
                  | pg_errors.InvalidTextRepresentation):
        return DamagedStore(
            f"{where} is damaged: {text} (a table of the store was changed outside iptflow)",
            path=where,
        )
    if isinstance(exc, psycopg.OperationalError) and getattr(exc, "sqlstate", None) is None:
        return StoreError(f"cannot reach the PostgreSQL server of {where}: {text}", path=where)
    return StoreError(f"{where}: PostgreSQL error: {text}", path=where,
                      sqlstate=getattr(exc, "sqlstate", None))


def _require_driver(where: str) -> None:
    if psycopg is None:
        raise StoreError(
            f"{where}: a PostgreSQL store needs psycopg 3: pip install 'iptflow[postgres]'",
            path=where,
        )


class PgRecorder(PgMigrationRecords, PgSnapshotRecords, PgPageReads):
    """One psycopg connection (autocommit; transactions opened by :meth:`write` and
    :meth:`read`) and every SQL statement of the PostgreSQL store."""

    backend = "postgresql"

    def __init__(self, conn: Any, path: str, *, timeout: float, readonly: bool) -> None:
        self.conn = conn
        self.path = path
        self.timeout = timeout
        self.readonly = readonly
        self._writing = False
        self._stored: set[str] = set()  # protocols known to be in the database
        self._written: set[str] = set()  # protocols written by the open transaction

    @classmethod
    def open(
        cls, url: str, *, synchronous: str, create: bool, timeout: float, readonly: bool = False
    ) -> PgRecorder:
        """Connect, set the session (``synchronous_commit``, ``lock_timeout``, read-only),
        check the schema and apply pending migrations. ``synchronous``: ``FULL`` keeps
        ``synchronous_commit=on`` (an accepted event is on the server's disk); ``NORMAL`` and
        ``OFF`` set it ``off`` (a server crash may lose the last commits, never corrupt).
        ``create`` is accepted for symmetry: the database itself must exist; its tables are
        created when missing."""
        del create
        where = display_url(url)
        _require_driver(where)
        sync = synchronous.upper() if isinstance(synchronous, str) else ""
        if sync not in SYNCHRONOUS:
            raise InvalidArgument(
                f"synchronous must be one of {', '.join(SYNCHRONOUS)}, got {synchronous!r}"
            )
        if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout < 0:
            raise InvalidArgument(f"timeout must be a number of seconds >= 0, got {timeout!r}")
        try:
            conn = psycopg.connect(url, autocommit=True, row_factory=dict_row,
                                   connect_timeout=max(1, int(timeout) or 1))
        except psycopg.Error as exc:
            raise pg_error(exc, where) from None
        recorder = cls(conn, where, timeout=timeout, readonly=readonly)
        try:
            with recorder.mapped():
                conn.execute(f"SET lock_timeout = {int(timeout * 1000)}")
                conn.execute("SET synchronous_commit = " + ("on" if sync == "FULL" else "off"))
                if readonly:
                    conn.execute("SET default_transaction_read_only = on")
                    schema_pending(*recorder._applied(), where, readonly=True)
                    return recorder
                if schema_pending(*recorder._applied(), where, readonly=False):
                    recorder._migrate()
        except BaseException:
            conn.close()
            raise
        return recorder

    def _applied(self) -> tuple[set[str], list[str]]:
        tables = self.tables()
        if MIGRATIONS_TABLE not in tables:
            return tables, []
        rows = self.conn.execute(f"SELECT name FROM {MIGRATIONS_TABLE} ORDER BY position")
        return tables, [r["name"] for r in rows]

    def _migrate(self) -> None:
        """Apply the pending migrations in one transaction, under an advisory lock (another
        process may be applying them at the same moment)."""
        with self.write():
            self.conn.execute("SELECT pg_advisory_xact_lock(hashtext('iptflow:' || current_schema()))")
            self.conn.execute(
                f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (name text PRIMARY KEY, "
                "position integer NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r["name"] for r in self.conn.execute(f"SELECT name FROM {MIGRATIONS_TABLE}")}
            twins = dict(MIGRATIONS)
            for position, name in enumerate(KNOWN_MIGRATIONS, start=1):
                if name in done:
                    continue
                statements = twins.get(name)
                if statements is None:
                    raise StoreError(f"{self.path}: migration {name} has no PostgreSQL version in "
                                     "this release", path=self.path, migration=name)
                for sql in statements:
                    self.conn.execute(sql)
                self.conn.execute(
                    f"INSERT INTO {MIGRATIONS_TABLE} (name, position) VALUES (%s, %s)",
                    (name, position),
                )

    @contextmanager
    def mapped(self) -> Iterator[None]:
        """Turn a psycopg error raised inside into the store's typed error."""
        started = time.monotonic()
        try:
            yield
        except psycopg.Error as exc:
            raise pg_error(exc, self.path, waited=time.monotonic() - started,
                           timeout=self.timeout) from None

    def close(self) -> None:
        self.conn.close()

    @property
    def db(self) -> Any:
        raise StoreError(f"{self.path} is a PostgreSQL store: it has no sqlite-utils Database "
                         "(inspect it through store.conn, a psycopg connection)", path=self.path)

    # -- transactions ----------------------------------------------------------------------------
    @property
    def _in_transaction(self) -> bool:
        return self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE

    @contextmanager
    def write(self) -> Iterator[None]:
        """A write transaction at ``READ COMMITTED``; course rows read inside are locked
        (``FOR UPDATE``) until it ends. Errors roll back and are raised typed."""
        if self.readonly:
            raise StoreReadOnly(f"{self.path} was opened read-only; nothing was stored", path=self.path)
        self._writing = True
        try:
            with committed(self, "BEGIN ISOLATION LEVEL READ COMMITTED"):
                yield
            self._stored |= self._written
        finally:
            self._writing = False
            self._written = set()

    def _rollback(self) -> None:
        if not self.conn.closed and self._in_transaction:
            with suppress(psycopg.Error):
                self.conn.execute("ROLLBACK")

    @contextmanager
    def read(self) -> Iterator[None]:
        """A ``REPEATABLE READ`` transaction: every read inside sees one snapshot (nests in
        any transaction)."""
        if self._in_transaction:
            yield
            return
        with self.mapped():
            self.conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        try:
            with self.mapped():
                yield
        except BaseException:
            self._rollback()
            raise
        with self.mapped():
            self.conn.execute("COMMIT")

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """The rows of one SELECT, each as a dict (``%s`` placeholders)."""
        with self.mapped():
            return list(self.conn.execute(sql, params).fetchall())

    def _scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self.conn.execute(sql, params).fetchone()
        return None if row is None else next(iter(row.values()))

    # -- reading ---------------------------------------------------------------------------------
    def course_row(self, course_id: str) -> Row | None:
        """The course's row; inside :meth:`write` it stays locked until the transaction ends."""
        lock = " FOR UPDATE" if self._writing else ""
        rows = self.rows(f"SELECT * FROM courses WHERE id = %s{lock}", (course_id,))
        return rows[0] if rows else None

    def course_rows(
        self,
        *,
        state: str | None = None,
        protocol: str | None = None,
        adaptation: str | None = None,
        synthetic: bool | None = None,
    ) -> list[Row]:
        """As :meth:`Recorder.course_rows <iptflow.store.recorder.Recorder.course_rows>`."""
        if adaptation is not None:
            self._check_adaptation_rows(adaptation)
        sql, params = course_filter(
            state=state, protocol=protocol, adaptation=adaptation, synthetic=synthetic
        )
        return self.rows(statement(self, sql), params)

    def _check_adaptation_rows(self, adaptation: str) -> None:
        with self.mapped():
            indexed = self._scalar(
                "SELECT count(*) FROM course_adaptations WHERE adaptation = %s "
                "AND course_id IN (SELECT id FROM courses)", (adaptation,))
            stored = self._scalar(
                "SELECT count(*) FROM courses, jsonb_array_elements_text(courses.adaptations::jsonb) a "
                "WHERE a = %s", (adaptation,))
        if indexed != stored:
            raise DamagedStore(
                f"{self.path} is damaged: {stored} course(s) have adaptation {adaptation!r} but "
                f"course_adaptations lists {indexed} (iptflow verify names them)",
                path=self.path, adaptation=adaptation,
            )

    def course_ids(self) -> list[str]:
        return [r["id"] for r in self.rows("SELECT id FROM courses ORDER BY id")]

    def count(self) -> int:
        with self.mapped():
            return int(self._scalar("SELECT count(*) FROM courses"))

    def events(self, course_id: str, upto: int | None = None) -> list[Row]:
        if upto is None:
            return self.rows("SELECT * FROM events WHERE course_id = %s ORDER BY seq", (course_id,))
        return self.rows("SELECT * FROM events WHERE course_id = %s AND seq <= %s ORDER BY seq",
                         (course_id, upto))

    def event_with_key(self, course_id: str, idempotency_key: str) -> Row | None:
        rows = self.rows("SELECT seq, body FROM events WHERE course_id = %s AND idempotency_key = %s",
                         (course_id, idempotency_key))
        return rows[0] if rows else None

    def orphan_course_ids(self) -> list[str]:
        return [r["course_id"] for r in self.rows(
            "SELECT DISTINCT course_id FROM events WHERE course_id NOT IN (SELECT id FROM courses) "
            "ORDER BY course_id")]

    def fingerprints(self) -> list[str]:
        return [r["fingerprint"] for r in self.rows(
            "SELECT fingerprint FROM protocols ORDER BY fingerprint")]

    def protocol_json(self, fingerprint: str) -> str | None:
        rows = self.rows("SELECT resolved FROM protocols WHERE fingerprint = %s", (fingerprint,))
        return rows[0]["resolved"] if rows else None

    def integrity_check(self) -> list[str]:
        """``["ok"]``: PostgreSQL checks its pages itself (data checksums, ``pg_amcheck``
        are the DBA's tools); ``verify`` checks everything iptflow wrote."""
        return ["ok"]

    def tables(self) -> set[str]:
        """The tables of the connection's current schema."""
        return {r["table_name"] for r in self.rows(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'")}

    def adaptation_rows(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for r in self.rows("SELECT course_id, adaptation FROM course_adaptations "
                           "ORDER BY course_id, adaptation"):
            out.setdefault(r["course_id"], []).append(r["adaptation"])
        return out

    # -- writing (inside :meth:`write`) ----------------------------------------------------------
    def insert_protocol(self, resolved: ResolvedProtocol) -> None:
        if resolved.fingerprint in self._stored:  # written by this connection, committed
            return
        with self.mapped():
            self.conn.execute(
                "INSERT INTO protocols (fingerprint, protocol_id, version, adaptations, resolved) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (fingerprint) DO NOTHING",
                insert_protocol_row(resolved),
            )
        self._written.add(resolved.fingerprint)

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
        """Insert a new course (row, adaptations, events: :func:`course_rows`) in one
        pipeline (one round trip for a short course; a long one's events go through ``COPY``);
        return its last hash. :class:`RecordConflict` when another writer created it first."""
        rows = course_rows(course_id, resolved, course_format, derived, events, synthetic=synthetic,
                           idempotency_key=idempotency_key, recorded_at=recorded_at)
        self._insert_rows(rows)
        return rows.last_hash

    def insert_courses(self, protocols: Sequence[tuple[Any, ...]], courses: Sequence[CourseRows]) -> None:
        """As :meth:`Recorder.insert_courses <iptflow.store.recorder.Recorder.insert_courses>`
        (a course stored before, given twice or created meanwhile by another writer is
        :class:`RecordConflict` naming it)."""
        with self.mapped(), self.conn.cursor() as cur:
            cur.executemany("INSERT INTO protocols (fingerprint, protocol_id, version, adaptations, "
                            "resolved) VALUES (%s, %s, %s, %s, %s) ON CONFLICT (fingerprint) DO NOTHING",
                            protocols)
        self._written.update(row[0] for row in protocols)
        for rows in courses:
            self._insert_rows(rows)

    def _insert_rows(self, rows: CourseRows) -> None:
        course_id = rows.course[0]
        with self.mapped():
            try:
                with self.conn.pipeline(), self.conn.cursor() as cur:
                    inserted = self.conn.execute(_INSERT_COURSE, rows.course)
                    if rows.adaptations:
                        cur.executemany("INSERT INTO course_adaptations (course_id, adaptation) "
                                        "VALUES (%s, %s)", rows.adaptations)
                    if len(rows.events) <= _PIPELINED:
                        cur.executemany(_INSERT_EVENT, rows.events)
                if inserted.rowcount == 0:
                    raise RecordConflict(f"course {course_id} was created by another writer",
                                         course_id=course_id)
            except pg_errors.UniqueViolation as exc:  # its events collided with the other's
                raise RecordConflict(str(exc).splitlines()[0], course_id=course_id) from exc
            if len(rows.events) > _PIPELINED:
                with self.conn.cursor() as cur, cur.copy(_COPY_EVENTS) as copy:
                    for row in rows.events:
                        copy.write_row(row)

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
        """As :meth:`Recorder.append_event <iptflow.store.recorder.Recorder.append_event>`;
        the update takes (or holds) the course row's lock, so a writer that changed the row
        first is seen. :class:`RecordConflict` when the row moved on, or that seq or key is
        already stored."""
        course_id = row["id"]
        values = event_row(course_id, derived["last_seq"], body, event, row["last_hash"],
                           idempotency_key, recorded_at)
        with self.mapped():
            updated = self.conn.execute(
                _UPDATE_COURSE, course_update(derived, values[7], event["at"], row))
            if updated.rowcount != 1:
                raise RecordConflict(f"course {course_id} is no longer at event {row['last_seq']}")
            try:
                self.conn.execute(_INSERT_EVENT, values)
            except pg_errors.UniqueViolation as exc:
                raise RecordConflict(str(exc).splitlines()[0]) from exc
        return str(values[7])

    # -- research tables -------------------------------------------------------------------------
    def insert_simulation_run(
        self, protocol: str, adaptations: str, fingerprint: str, n: int, seed: int, model: str
    ) -> int:
        with self.mapped():
            self.conn.execute("LOCK TABLE simulation_runs IN EXCLUSIVE MODE")
            run = int(self._scalar("SELECT COALESCE(MAX(run), 0) + 1 FROM simulation_runs"))
            self.conn.execute(
                "INSERT INTO simulation_runs (run, protocol, adaptations, fingerprint, n, seed, "
                "model, synthetic) VALUES (%s, %s, %s, %s, %s, %s, %s, 1)",
                (run, protocol, adaptations, fingerprint, n, seed, model),
            )
        return run

    def simulation_runs(self) -> list[Row]:
        return self.rows("SELECT * FROM simulation_runs ORDER BY run")
