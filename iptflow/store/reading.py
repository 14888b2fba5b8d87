"""The reading half of :class:`~iptflow.store.api.Store`: opening (for writing or read-only),
loading courses, rows, logs, course files, ``verify`` and simulation runs.

:class:`StoreReader` is what ``Store.open(path, readonly=True)`` needs; :class:`Store` adds
every write. Reads that return event bodies (``get``, ``history``, ``export_course_file``)
take ``verify=True`` to check each event's hash and link first (:class:`HashMismatch`).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any, Self

from sqlite_utils import Database

from iptflow.engine.course import Course
from iptflow.engine.registry import Registry, default_registry
from iptflow.store.errors import CorruptCourse, HashMismatch, InvalidArgument, UnknownCourse
from iptflow.store.hashing import decode_event, encode_event
from iptflow.store.loading import PinnedProtocols, load_log
from iptflow.store.postgres import PgRecorder
from iptflow.store.recorder import Recorder, utc_now
from iptflow.store.rows import (
    CourseRow,
    MigrationRecord,
    Problem,
    SimulationRun,
    StoredEvent,
    VerifyReport,
)
from iptflow.store.snapshots import LogRow
from iptflow.store.urls import is_postgres_url, sqlite_path
from iptflow.store.verify import check_log, verify_store
from iptflow.store.worklist import Worklist, worklist

__all__ = ["StoreReader"]


class StoreReader:
    """A SQLite database of courses, for reading: see :class:`~iptflow.store.api.Store`."""

    def __init__(
        self,
        recorder: Recorder | PgRecorder,
        registry: Registry | None,
        clock: Callable[[], str] | None,
        cache_size: int,
        snapshot_every: int = 10,
    ) -> None:
        self.recorder = recorder
        self._snapshot_every = snapshot_every
        self.protocols = PinnedProtocols(recorder, lambda: self.registry)
        self._registry = registry
        self._clock = clock
        self._cache_size = cache_size
        # course_id -> (last_seq, last_hash, live Course); never handed out
        self._cache: OrderedDict[str, tuple[int, str, Course]] = OrderedDict()

    # -- opening and closing ---------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str] = "iptflow.db",
        *,
        registry: Registry | None = None,
        synchronous: str = "FULL",
        create: bool = True,
        readonly: bool = False,
        timeout: float = 30.0,
        clock: Callable[[], str] | None = utc_now,
        cache_size: int = 256,
        snapshot_every: int = 10,
    ) -> Self:
        """Open (and, with ``create``, create) a store; check its schema and apply pending
        migrations.

        :param path: a database file, ``":memory:"``, ``sqlite:///PATH``, or a PostgreSQL
            URL ``postgresql://USER@HOST:PORT/DATABASE`` (extra ``postgres``; the same API and
            guarantees, docs/store.md#postgresql).
        :param registry: the registry that resolves protocols of new courses and compiles stored
            ones (default: ``default_registry()``).
        :param synchronous: SQLite's ``PRAGMA synchronous``: ``FULL`` (default) makes every
            committed event survive a power failure; ``NORMAL`` survives a crash of the process
            but may lose the last commits on power failure; ``OFF`` is for throwaway data.
        :param create: with ``False`` a missing file raises :class:`NoDatabase` instead of
            creating an empty database.
        :param readonly: open the file read-only (SQLite ``mode=ro``; commands that only read
            use this): nothing is created or migrated, a missing file raises
            :class:`NoDatabase`, a SQLite file without iptflow's tables
            :class:`NotAnIptflowStore`, and every write :class:`StoreReadOnly`. Works in a
            read-only directory (see :mod:`iptflow.store.connection`).
        :param timeout: seconds to wait for another connection's write lock before raising
            :class:`StoreBusy`.
        :param clock: returns the ``recorded_at`` audit string of written events; ``None``
            stores no wall-clock time (deterministic files, e.g. for simulated data).
        :param cache_size: how many live courses to keep in memory to make ``apply`` fast.
        :param snapshot_every: write a course's snapshot (docs/store.md#snapshots) after every
            N-th event and whenever a course is stored whole; ``0`` writes none (existing
            snapshots are still used while they match).
        """
        if type(snapshot_every) is not int or snapshot_every < 0:
            raise InvalidArgument(f"snapshot_every must be an integer >= 0, got {snapshot_every!r}",
                                  argument="snapshot_every")
        location = os.fspath(path)
        recorder: Recorder | PgRecorder
        if is_postgres_url(location):
            recorder = PgRecorder.open(location, synchronous=synchronous, create=create,
                                       timeout=timeout, readonly=readonly)
        else:
            recorder = Recorder.open(sqlite_path(location), synchronous=synchronous,
                                     create=create, timeout=timeout, readonly=readonly)
        return cls(recorder, registry, clock, cache_size, snapshot_every)

    def close(self) -> None:
        """Close the connection (committed events are already durable)."""
        self._cache.clear()
        self.recorder.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Store {self.path}>"

    @property
    def path(self) -> str:
        return self.recorder.path

    @property
    def readonly(self) -> bool:
        """Whether the store was opened with ``readonly=True``."""
        return self.recorder.readonly

    @property
    def db(self) -> Database:
        """The sqlite-utils database, to inspect (write through the Store's methods)."""
        return self.recorder.db

    @property
    def conn(self) -> sqlite3.Connection:
        """The SQLite connection, to inspect (write through the Store's methods)."""
        return self.recorder.conn

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            self._registry = default_registry()
        return self._registry

    # -- loading ---------------------------------------------------------------------------------
    def _existing_row(self, course_id: str) -> dict[str, Any]:
        """The course's row; :class:`UnknownCourse` when the store does not hold it (reading)."""
        row = self.recorder.course_row(course_id)
        if row is None:
            raise UnknownCourse(f"no course {course_id!r} in {self.path}", course_id=course_id)
        return row

    def _load(self, row: dict[str, Any], log: list[LogRow],
              bodies: list[Any] | None = None) -> Course:
        """Load a course from its row and ``(seq, hash, body)`` event rows on the protocol it is
        pinned to (``loading.load_log``): the one it was opened under, or the one its last
        protocol migration moved it to; from its snapshot when it has a usable one."""
        with self.recorder.read():
            migrated = self.recorder.course_migrations(row["id"])
            snapshot = self.recorder.snapshot(row["id"])
        compiled = self.protocols.compiled(row["fingerprint"], row["id"])
        return load_log(row, log, compiled, migrated, snapshot, bodies)

    def get(self, course_id: str, *, verify: bool = False) -> Course:
        """The course, rebuilt by replaying its log on the protocol it was opened under (from
        the course's snapshot and the events after it, when it has a usable one).

        The returned :class:`~iptflow.Course` is the caller's own: changing it (``apply``) does
        not change the store; use :meth:`apply` for that. Raises :class:`UnknownCourse`,
        :class:`MissingProtocol` or :class:`CorruptCourse`; with ``verify``,
        :class:`HashMismatch` when a stored event no longer matches its hash.

        What a plain ``get`` trusts (docs/store.md#snapshots): with a usable snapshot, the
        events up to it are neither replayed nor parsed. The course's ``history`` decodes them
        the first time it is read; a body that is not JSON then raises :class:`CorruptCourse`
        naming the course and event. ``verify=True`` checks and decodes every event first.
        """
        require_str("course_id", course_id)
        if not verify:
            with self.recorder.read():  # one read for the rows, migration records and snapshot
                return self._load(self._existing_row(course_id), self.recorder.log_rows(course_id))
        row, events, bodies = self._read_log(course_id, verify=True)
        return self._load(row, [(e["seq"], e["hash"], e["body"]) for e in events], bodies)

    def _read_log(
        self, course_id: str, verify: bool
    ) -> tuple[dict[str, Any], list[dict[str, Any]], list[Any] | None]:
        """A course's row and event rows in one snapshot; with ``verify`` the hash chain of
        the events is checked first (:func:`~iptflow.store.verify.check_log`) and their
        decoded bodies come third (else ``None``)."""
        require_str("course_id", course_id)
        with self.recorder.read():
            row = self._existing_row(course_id)
            events = self.recorder.events(course_id)
            migrated = self.recorder.course_migrations(course_id) if verify else []
        if verify:
            problem = check_log(row, events, migrated)
            if isinstance(problem, Problem):
                raise HashMismatch(
                    f"course {course_id}"
                    + (f" event {problem.seq}" if problem.seq is not None else "")
                    + f": {problem.message}",
                    course_id=course_id, seq=problem.seq, kind=problem.kind,
                )
            return row, events, problem
        return row, events, None

    # -- reading ---------------------------------------------------------------------------------
    def exists(self, course_id: str) -> bool:
        require_str("course_id", course_id)
        return self.recorder.course_row(course_id) is not None

    def row(self, course_id: str) -> CourseRow:
        """The course's row (protocol, last seq, derived summary) without replaying it."""
        require_str("course_id", course_id)
        return CourseRow.from_row(self._existing_row(course_id))

    def history(self, course_id: str, *, verify: bool = False) -> list[StoredEvent]:
        """Every stored event of a course, in order, with its seq, hash chain and audit data.

        With ``verify``, raises :class:`HashMismatch` (naming the event) unless every event
        still matches its hash and link.
        """
        _, rows, _ = self._read_log(course_id, verify)
        try:
            return [StoredEvent.from_row(r) for r in rows]
        except ValueError as exc:
            raise CorruptCourse(f"course {course_id}: a stored event is not valid JSON: {exc}",
                                course_id=course_id) from None

    def migrations(self, course_id: str) -> list[MigrationRecord]:
        """The course's ``protocol_migrated`` records, in order (docs/migration.md): from and to
        which resolved protocol, after which event, by whom, when and why."""
        require_str("course_id", course_id)
        with self.recorder.read():
            self._existing_row(course_id)
            rows = self.recorder.course_migrations(course_id)
        return [MigrationRecord.from_row(r) for r in rows]

    def list(
        self,
        *,
        state: str | None = None,
        protocol: str | None = None,
        adaptation: str | None = None,
        synthetic: bool | None = None,
    ) -> list[CourseRow]:
        """Course rows, by id, filtered by state, protocol (``id``: every version, or
        ``id@version``), adaptation and synthetic flag."""
        rows = self.recorder.course_rows(
            state=state, protocol=protocol, adaptation=adaptation, synthetic=synthetic
        )
        return [CourseRow.from_row(r) for r in rows]

    def count(self) -> int:
        return self.recorder.count()

    def iter_rows(self, *, page: int = 5000) -> Iterator[CourseRow]:
        """Every course row, by id, read ``page`` rows at a time (memory does not grow with
        the store; each page is its own read)."""
        after = ""
        while rows := self.recorder.course_page(after, page):
            yield from (CourseRow.from_row(r) for r in rows)
            after = rows[-1]["id"]

    def iter_events(self, event_type: str | None = None, *, page: int = 5000) -> Iterator[StoredEvent]:
        """Every stored event (only those of ``event_type`` when given), by course id and seq,
        read ``page`` rows at a time."""
        after: tuple[str, int] = ("", 0)
        while rows := self.recorder.event_page(after, page, event_type):
            for r in rows:
                try:
                    yield StoredEvent.from_row(r)
                except ValueError as exc:
                    raise CorruptCourse(
                        f"course {r['course_id']}: event {r['seq']} is not valid JSON: {exc}",
                        course_id=r["course_id"], seq=r["seq"],
                    ) from None
            after = (rows[-1]["course_id"], rows[-1]["seq"])

    # -- course files ----------------------------------------------------------------------------
    def export_course_file(self, course_id: str, *, verify: bool = False) -> str:
        """The course as a course file (SPEC §6): its stored events, one per line, as given,
        except that ``course_opened`` names the protocol version the course runs on
        (``ipt-depression`` becomes ``ipt-depression@1.0.0``), so that the file replays under
        the same rules after a newer version is installed. A course moved by a protocol
        migration names the protocol (and adaptations) it was moved to.

        With ``verify``, raises :class:`HashMismatch` unless every event matches its hash.
        """
        row, rows, _ = self._read_log(course_id, verify)
        bodies = [r["body"] for r in rows]
        opened = decode_event(bodies[0])
        pinned = f"{row['protocol_id']}@{row['protocol_version']}"
        with self.recorder.read():
            migrated = bool(self.recorder.course_migrations(course_id))
        if migrated:  # it runs on the protocol its last migration moved it to (docs/migration.md)
            moved = {**opened, "protocol": pinned}
            adaptations = json.loads(row["adaptations"])
            if sorted(opened.get("adaptations") or []) != sorted(adaptations):
                moved["adaptations"] = adaptations
            bodies[0] = encode_event(moved)
        elif isinstance(opened.get("protocol"), str) and "@" not in opened["protocol"]:
            bodies[0] = encode_event({**opened, "protocol": pinned})
        return "".join(f"{body}\n" for body in bodies)

    # -- audit and research -----------------------------------------------------------------------
    def verify(self, *, integrity: bool = True) -> VerifyReport:
        """Check every course's hash chain, replay and derived row, and every derived table;
        see :mod:`iptflow.store.verify`. A damaged file is a finding (kind ``damaged``)."""
        return verify_store(self.recorder, self.protocols, integrity=integrity)

    def simulation_runs(self) -> list[SimulationRun]:
        """The recorded simulation runs, by run number."""
        return [SimulationRun.from_row(r) for r in self.recorder.simulation_runs()]

    def worklist(
        self,
        as_of: datetime | str,
        *,
        actor: str | None = None,
        severities: Iterable[str] | None = None,
    ) -> Worklist:
        """What every active course needs as of ``as_of``: :func:`iptflow.store.worklist.worklist`
        (docs/worklist.md)."""
        return worklist(self, as_of, actor=actor, severities=severities)


def require_str(name: str, value: object) -> None:
    if not isinstance(value, str):
        raise InvalidArgument(f"{name} must be a str, got {type(value).__name__}", argument=name)


def require_optional_str(name: str, value: object) -> None:
    if value is not None:
        require_str(name, value)


def require_optional_int(name: str, value: object) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise InvalidArgument(f"{name} must be an int, got {type(value).__name__}", argument=name)

