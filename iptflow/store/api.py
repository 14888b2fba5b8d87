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
course cache); :mod:`~iptflow.store.reading` opens stores and reads them;
:mod:`~iptflow.store.recorder` runs every SQL statement, inside transactions the Store opens
(:mod:`~iptflow.store.connection` connects and maps every ``sqlite3`` error to a typed one);
:mod:`~iptflow.store.loading` turns stored rows back into courses.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from iptflow.engine.course import Course
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
from iptflow.store.hashing import body_or_rejection, decode_event
from iptflow.store.importing import CourseImports
from iptflow.store.loading import decode_log, derived_columns, stored_result
from iptflow.store.reading import StoreReader, require_optional_int, require_optional_str, require_str
from iptflow.store.recorder import RecordConflict
from iptflow.store.rows import (
    CourseRow,
    ImportResult,
    MigrationRecord,
    SimulationRun,
    StoredEvent,
    VerifyReport,
)
from iptflow.store.snapshots import snapshot_values

__all__ = [
    "CorruptCourse",
    "CourseExists",
    "CourseRow",
    "IdempotencyKeyReused",
    "ImportRefused",
    "ImportResult",
    "MigrationRecord",
    "MissingProtocol",
    "NoDatabase",
    "SimulationRun",
    "Store",
    "StoreError",
    "StoredEvent",
    "UnknownCourse",
    "VerifyReport",
]


class Store(StoreReader, CourseImports):
    """A SQLite database of courses. Open it with :meth:`open`; close it (or use ``with``).

    One ``Store`` belongs to one thread; any number of processes may open the same file. Its
    SQL goes through ``recorder`` (:class:`~iptflow.store.recorder.Recorder`), its stored
    protocols through ``protocols`` (:class:`~iptflow.store.loading.PinnedProtocols`). Its
    reads (``get``, ``history``, ``list``, ``verify``, ...) and :meth:`open` are those of
    :class:`~iptflow.store.reading.StoreReader`; this class adds every write.
    """

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
        return self._load(row, self.recorder.log_rows(course_id))

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
        hash_ = self.recorder.insert_course(
            course.course_id,
            resolved,
            course.facts.format,
            derived_columns(course),
            events,
            synthetic=synthetic,
            idempotency_key=idempotency_key,
            recorded_at=self._now(),
        )
        self._snapshot(course, hash_, whole=True)
        return hash_

    def _snapshot(self, course: Course, hash_: str, *, whole: bool = False) -> None:
        """Write the course's snapshot in the open transaction when ``snapshot_every`` says
        so (``whole``: the course was just stored with all its events)."""
        every = self._snapshot_every
        if every and (whole or course.seq % every == 0):
            values = snapshot_values(course, hash_)
            if values is not None:
                self.recorder.put_snapshots([values])

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
        require_optional_str("idempotency_key", idempotency_key)
        etype = event.get("type") if isinstance(event, Mapping) else None
        body = body_or_rejection(event, etype)
        if isinstance(body, Rejection):
            return body
        course, result = Course.try_open(event, self.registry, notify=False)
        if course is None:
            return result
        try:
            return self._open_once(course, result, (body, event), idempotency_key, synthetic)
        except RecordConflict:  # PostgreSQL: another writer created it since; answer as then
            return self._open_once(course, result, (body, event), idempotency_key, synthetic)

    def _open_once(
        self,
        course: Course,
        result: Result,
        opened: tuple[str, Mapping[str, Any]],
        idempotency_key: str | None,
        synthetic: bool,
    ) -> Result:
        """Store a course ``open_course`` accepted, in one transaction (see there)."""
        course_id = course.course_id
        with self.recorder.write():
            existing = self.recorder.course_row(course_id)
            if existing is not None:
                repeated = self._repeated(existing, idempotency_key, opened[0])
                if repeated is not None:
                    return repeated
                return Rejection(
                    "conflict",
                    f"course {course_id} already exists (opened at {existing['created_at']})",
                    "course_opened",
                )
            hash_ = self._insert_course(course, [opened], synthetic, idempotency_key)
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
        require_str("course_id", course_id)
        require_optional_int("expected_seq", expected_seq)
        require_optional_str("idempotency_key", idempotency_key)
        etype = event.get("type") if isinstance(event, Mapping) else None
        etype = etype if isinstance(etype, str) else None
        body = body_or_rejection(event, etype)
        if isinstance(body, Rejection):
            return body
        try:
            result = self._apply_cached(course_id, event, body, expected_seq, idempotency_key)
            if result is None:
                result = self._apply_read(course_id, event, body, etype, expected_seq, idempotency_key)
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
        return result

    def _apply_cached(
        self,
        course_id: str,
        event: Mapping[str, Any],
        body: str,
        expected_seq: int | None,
        idempotency_key: str | None,
    ) -> Result | None:
        """``apply`` on the store's cached course without reading its row first: the engine
        decides on the cached course, and the write updates the course row only where it is
        still at the cached seq and hash (``Recorder.append_event``). ``None`` (nothing
        written, the cached course dropped if it was changed) when :meth:`_apply_read` must
        decide instead: the course is not cached, closed, ``expected_seq`` is not the cached
        seq, ``idempotency_key`` is already stored, the engine rejects the event (the answer
        must come from the current row), or another writer changed the course meanwhile."""
        cached = self._cache.get(course_id)
        if cached is None:
            return None
        seq, hash_, course = cached
        if course.is_closed or (expected_seq is not None and expected_seq != seq):
            return None
        if idempotency_key is not None and self.recorder.event_with_key(course_id, idempotency_key):
            return None
        result = course.apply(event)  # a rejection leaves the course as it was
        if not result.ok:
            return None
        cached_row = {"id": course_id, "last_seq": seq, "last_hash": hash_}
        try:  # from here on the in-memory course is ahead of the database
            with self.recorder.write():
                hash_ = self.recorder.append_event(
                    cached_row, body, event, derived_columns(course),
                    idempotency_key=idempotency_key, recorded_at=self._now(),
                )
                self._snapshot(course, hash_)
        except RecordConflict:  # another writer changed the course since it was cached
            self._cache.pop(course_id, None)
            return None
        self._remember(course_id, course.seq, hash_, course)
        return result

    def _apply_read(
        self,
        course_id: str,
        event: Mapping[str, Any],
        body: str,
        etype: str | None,
        expected_seq: int | None,
        idempotency_key: str | None,
    ) -> Result:
        """``apply`` deciding on the course row read inside the write transaction (see there)."""
        live: tuple[int, str, Course] | None = None  # what to cache once the transaction ends
        with self.recorder.write():
            row = self.recorder.course_row(course_id)
            if row is None:
                return Rejection("no_course", f"no course {course_id!r}: it was never opened", etype)
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
                    self._snapshot(course, hash_)
                    live = (result.seq, hash_, course)
                else:
                    live = (row["last_seq"], row["last_hash"], course)
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

    # -- protocol migration (iptflow.store.protocol_migration) ----------------------------------
    def record_migration(
        self, migrated: Course, *, expected_hash: str, record: Mapping[str, Any]
    ) -> MigrationRecord | None:
        """Pin a stored course to the protocol ``migrated`` (its log replayed under that
        protocol) runs on, in one transaction: the protocol is stored, ``record`` (``from``,
        ``to``, ``class``, ``actor``, ``at``, ``reason``; ``after_seq`` is taken from
        ``migrated``) joins the course's hash chain and the course row follows the replay.

        Its events are never rewritten. Returns the record, or ``None`` (nothing written) when
        the course is no longer at ``migrated.seq`` with last hash ``expected_hash``: it changed
        since it was replayed. ``iptflow.store.protocol_migration`` decides what to migrate.
        """
        course_id = migrated.course_id
        values = {**record, "after_seq": migrated.seq}
        with self.recorder.write():
            row = self.recorder.course_row(course_id)
            if row is None:
                raise UnknownCourse(f"no course {course_id!r} in {self.path}", course_id=course_id)
            if row["last_seq"] != migrated.seq or row["last_hash"] != expected_hash:
                return None
            self.recorder.insert_migration(
                row, values, migrated.protocol, derived_columns(migrated), recorded_at=self._now()
            )
            stored = self.recorder.course_migrations(course_id)[-1]
        self._cache.pop(course_id, None)
        return MigrationRecord.from_row(stored)

    # -- research ------------------------------------------------------------------------------
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

