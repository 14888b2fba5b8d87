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

The seam: :class:`Store` decides (the engine's checks, idempotency keys, ``expected_seq``, the
course cache); :mod:`~iptflow.store.recorder` runs every SQL statement, inside transactions
the Store opens; :mod:`~iptflow.store.loading` turns stored rows back into courses.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlite_utils import Database

from iptflow.engine.course import Course
from iptflow.engine.registry import Registry, default_registry
from iptflow.engine.results import Rejection, Result
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
from iptflow.store.hashing import body_or_rejection, decode_event, encoded
from iptflow.store.loading import PinnedProtocols, decode_log, derived_columns, load_course, stored_result
from iptflow.store.recorder import RecordConflict, Recorder, utc_now
from iptflow.store.rows import CourseRow, ImportResult, SimulationRun, StoredEvent, VerifyReport
from iptflow.store.sources import Source, course_of, replayed_file
from iptflow.store.verify import verify_store

__all__ = [
    "CorruptCourse",
    "CourseExists",
    "CourseRow",
    "IdempotencyKeyReused",
    "ImportRefused",
    "ImportResult",
    "MissingProtocol",
    "NoDatabase",
    "SimulationRun",
    "Store",
    "StoreError",
    "StoredEvent",
    "UnknownCourse",
    "VerifyReport",
]


class Store:
    """A SQLite database of courses. Open it with :meth:`open`; close it (or use ``with``).

    One ``Store`` belongs to one thread; any number of processes may open the same file. Its
    SQL goes through ``recorder`` (:class:`~iptflow.store.recorder.Recorder`), its stored
    protocols through ``protocols`` (:class:`~iptflow.store.loading.PinnedProtocols`).
    """

    def __init__(
        self,
        recorder: Recorder,
        registry: Registry | None,
        clock: Callable[[], str] | None,
        cache_size: int,
    ) -> None:
        self.recorder = recorder
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
        recorder = Recorder.open(
            os.fspath(path), synchronous=synchronous, create=create, timeout=timeout
        )
        return cls(recorder, registry, clock, cache_size)

    def close(self) -> None:
        """Close the connection (committed events are already durable)."""
        self._cache.clear()
        self.recorder.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Store {self.path}>"

    @property
    def path(self) -> str:
        return self.recorder.path

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

    def _load(self, row: dict[str, Any], events: list[dict[str, Any]]) -> Course:
        """Replay a course's rows on the protocol it was opened under (``loading.load_course``)."""
        return load_course(row, events, self.protocols.compiled(row["fingerprint"], row["id"]))

    def get(self, course_id: str) -> Course:
        """The course, rebuilt by replaying its log on the protocol it was opened under.

        The returned :class:`~iptflow.Course` is the caller's own: changing it (``apply``) does
        not change the store; use :meth:`apply` for that. Raises :class:`UnknownCourse`,
        :class:`MissingProtocol` or :class:`CorruptCourse`.
        """
        with self.recorder.read():
            row = self._existing_row(course_id)
            events = self.recorder.events(course_id)
        return self._load(row, events)

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
        return self._load(row, self.recorder.events(course_id))

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

    def _insert_course(
        self,
        course: Course,
        events: Sequence[tuple[str, Mapping[str, Any]]],
        synthetic: bool,
        idempotency_key: str | None = None,
    ) -> str:
        """Insert a new course (protocol row, course row, every ``(body, event)``) in the open
        transaction; return its last hash."""
        resolved = course.protocol
        self.recorder.insert_protocol(resolved)
        return self.recorder.insert_course(
            course.course_id,
            resolved,
            course.facts.format,
            derived_columns(course),
            events,
            synthetic=synthetic,
            idempotency_key=idempotency_key,
            recorded_at=self._now(),
        )

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
        body = body_or_rejection(event, etype)
        if isinstance(body, Rejection):
            return body
        course, result = Course.try_open(event, self.registry, notify=False)
        if course is None:
            return result
        course_id = course.course_id
        with self.recorder.write():
            existing = self.recorder.course_row(course_id)
            if existing is not None:
                repeated = self._repeated(existing, idempotency_key, body)
                if repeated is not None:
                    return repeated
                return Rejection(
                    "conflict",
                    f"course {course_id} already exists (opened at {existing['created_at']})",
                    "course_opened",
                )
            hash_ = self._insert_course(course, [(body, event)], synthetic, idempotency_key)
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
        body = body_or_rejection(event, etype)
        if isinstance(body, Rejection):
            return body
        live: tuple[int, str, Course] | None = None  # what to cache once the transaction ends
        try:
            with self.recorder.write():
                row = self.recorder.course_row(course_id)
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
                        hash_ = self.recorder.append_event(
                            row, body, event, derived_columns(course),
                            idempotency_key=idempotency_key, recorded_at=self._now(),
                        )
                        live = (result.seq, hash_, course)
                    else:
                        live = (row["last_seq"], row["last_hash"], course)
        except RecordConflict as exc:
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

    def _repeated(self, row: dict[str, Any], idempotency_key: str | None, body: str) -> Result | None:
        """The result an event already written under this idempotency key got when it was
        stored, if any (the same key with a different event raises :class:`IdempotencyKeyReused`)."""
        course_id = row["id"]
        if idempotency_key is None:
            return None
        stored = self.recorder.event_with_key(course_id, idempotency_key)
        if stored is None:
            return None
        if decode_event(stored["body"]) != decode_event(body):
            raise IdempotencyKeyReused(
                f"course {course_id}: idempotency key {idempotency_key!r} was already used for "
                "a different event",
                course_id=course_id,
                idempotency_key=idempotency_key,
            )
        events = self.recorder.events(course_id, upto=stored["seq"])
        compiled = self.protocols.compiled(row["fingerprint"], course_id)
        return stored_result(course_id, decode_log(course_id, events), compiled)

    # -- reading ---------------------------------------------------------------------------------
    def exists(self, course_id: str) -> bool:
        return self.recorder.course_row(course_id) is not None

    def row(self, course_id: str) -> CourseRow:
        """The course's row (protocol, last seq, derived summary) without replaying it."""
        return CourseRow.from_row(self._existing_row(course_id))

    def history(self, course_id: str) -> list[StoredEvent]:
        """Every stored event of a course, in order, with its seq, hash chain and audit data."""
        with self.recorder.read():
            self._existing_row(course_id)
            rows = self.recorder.events(course_id)
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
        rows = self.recorder.course_rows(
            state=state, protocol=protocol, adaptation=adaptation, synthetic=synthetic
        )
        return [CourseRow.from_row(r) for r in rows]

    def count(self) -> int:
        return self.recorder.count()

    # -- course files ----------------------------------------------------------------------------
    def export_course_file(self, course_id: str) -> str:
        """The course as a course file (SPEC §6): its stored events, one per line, as given."""
        with self.recorder.read():
            self._existing_row(course_id)
            rows = self.recorder.events(course_id)
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
        name = os.fspath(path)
        result = replayed_file(name, self.registry, skip_rejected=skip_rejected)
        assert result.course is not None
        course = result.course
        with self.recorder.write():
            if self.recorder.course_row(course.course_id) is not None:
                raise CourseExists(
                    f"{name}: course {course.course_id} is already in {self.path}",
                    course_id=course.course_id,
                )
            hash_ = self._insert_course(course, encoded(course.history), synthetic)
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
        sources: Iterable[Source],
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
        ids: list[str] = []
        pending = [course_of(source, self.registry) for source in sources]
        seen: set[str] = set()
        with self.recorder.write():
            for course in pending:
                cid = course.course_id
                if cid in seen or self.recorder.course_row(cid) is not None:
                    raise CourseExists(f"course {cid} is already in {self.path}", course_id=cid)
                seen.add(cid)
                self._insert_course(course, encoded(course.history), synthetic)
                ids.append(cid)
        return ids

    # -- audit and research -----------------------------------------------------------------------
    def verify(self, *, integrity: bool = True) -> VerifyReport:
        """Check every course's hash chain, replay and derived row; see :mod:`iptflow.store.verify`."""
        return verify_store(self.recorder, self.protocols, integrity=integrity)

    def record_simulation_run(
        self,
        *,
        protocol: str,
        adaptations: Sequence[str],
        fingerprint: str,
        n: int,
        seed: int,
        model: Mapping[str, Any],
    ) -> int:
        """Record a run of ``iptflow simulate`` (what generated this store's synthetic courses)
        in its own transaction; return its run number (1, 2, ...)."""
        with self.recorder.write():
            return self.recorder.insert_simulation_run(
                protocol,
                json.dumps(list(adaptations)),
                fingerprint,
                n,
                seed,
                json.dumps(dict(model), sort_keys=True),
            )

    def simulation_runs(self) -> list[SimulationRun]:
        """The recorded simulation runs, by run number."""
        return [SimulationRun.from_row(r) for r in self.recorder.simulation_runs()]

