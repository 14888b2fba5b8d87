"""``Store``'s imports: course files and other sources stored whole, with every event the
engine accepted, hash-chained as ``apply`` would have written them (docs/store.md).

:class:`CourseImports` is a part of :class:`~iptflow.store.api.Store` (it inherits it). Every
source of a batch is checked (:mod:`~iptflow.store.sources`) and turned into its rows
(:class:`Prepared`: events hash-chained, course row, snapshot) before anything is written; the
batch is then written in one transaction with one statement per table. Course files may be
checked in forked worker processes (``workers``): each hands back its files' rows, in order.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from iptflow.engine.course import Course
from iptflow.engine.registry import Registry
from iptflow.errors import CourseFileError
from iptflow.store.errors import CourseExists, ImportRefused, InvalidArgument
from iptflow.store.hashing import encoded
from iptflow.store.loading import derived_columns
from iptflow.store.recorder import RecordConflict
from iptflow.store.rows import ImportResult
from iptflow.store.snapshots import snapshot_values
from iptflow.store.sources import Source, course_of, replayed_file
from iptflow.store.write_rows import CourseRows, course_rows, insert_protocol_row

__all__ = ["CourseImports", "ImportOptions", "Prepared", "file_prepared", "prepared_files"]

#: Files per task of a worker process, and the fewest files worth forking workers for.
CHUNK = 16
MIN_PARALLEL = 2 * CHUNK


class ImportOptions(NamedTuple):
    """How a batch is stored: ``synthetic`` flag, ``skip_rejected`` (files), the store's
    ``snapshot_every`` (0: no snapshots) and the batch's ``recorded_at``."""

    synthetic: bool
    skip_rejected: bool
    snapshot_every: int
    recorded_at: str | None


class Prepared(NamedTuple):
    """A checked course's rows: ``rows`` (:func:`~iptflow.store.write_rows.course_rows`), its
    ``snapshot`` row or None, the ``protocol`` row when its preparer had not handed that
    fingerprint out yet, and (files) the ``result`` to report."""

    rows: CourseRows
    snapshot: tuple[Any, ...] | None
    protocol: tuple[Any, ...] | None
    result: ImportResult | None = None


def course_prepared(course: Course, bodies: Sequence[tuple[str, Mapping[str, Any]]],
                    options: ImportOptions, sent: set[str]) -> Prepared:
    """The rows of ``course`` with its events ``(body, event)``; ``sent``: the fingerprints
    whose protocol rows were handed out already (updated)."""
    resolved = course.protocol
    rows = course_rows(course.course_id, resolved, course.facts.format, derived_columns(course),
                       bodies, synthetic=options.synthetic, idempotency_key=None,
                       recorded_at=options.recorded_at)
    snapshot = snapshot_values(course, rows.last_hash) if options.snapshot_every else None
    protocol = None
    if resolved.fingerprint not in sent:
        sent.add(resolved.fingerprint)
        protocol = insert_protocol_row(resolved)
    return Prepared(rows, snapshot, protocol)


def file_prepared(name: str, registry: Registry, options: ImportOptions, sent: set[str]) -> Prepared:
    """A course file replayed and checked as ``Store.import_course_file`` checks it (raising
    as it does), as its rows."""
    result = replayed_file(name, registry, skip_rejected=options.skip_rejected)
    course = result.course
    assert course is not None
    try:  # the engine accepted every event of the history: within the JSON limits
        bodies = encoded(course.history, checked=True)
    except ValueError as exc:
        raise CourseFileError(f"not storable: {exc}", file=name) from None
    done = ImportResult(file=name, course_id=course.course_id, events=len(course.history),
                        skipped=list(result.rejected), state=course.state)
    return course_prepared(course, bodies, options, sent)._replace(result=done)


_WORK: tuple[Registry, ImportOptions] | None = None  # set by the parent before it forks
_SENT: set[str] = set()  # a worker's fingerprints whose protocol rows it handed out


def _prepare_chunk(names: list[str]) -> list[Prepared | int]:
    """A worker's task: each file's rows, or its index in ``names`` when it raised (the parent
    prepares that file again and raises its error there)."""
    assert _WORK is not None
    registry, options = _WORK
    sent = _SENT  # per worker process: each protocol row is made and handed out once
    out: list[Prepared | int] = []
    for index, name in enumerate(names):
        try:
            out.append(file_prepared(name, registry, options, sent))
        except Exception:  # noqa: BLE001 - raised again by the parent, typed
            out.append(index)
    return out


def prepared_files(names: Sequence[str], registry: Registry, options: ImportOptions,
                   workers: int = 1) -> list[Prepared]:
    """Every file's rows, in order; the first file (in order) that is refused raises. With
    ``workers`` > 1 and at least :data:`MIN_PARALLEL` files, forked processes replay them."""
    if workers <= 1 or len(names) < MIN_PARALLEL:
        sent: set[str] = set()
        return [file_prepared(name, registry, options, sent) for name in names]
    global _WORK
    _WORK = (registry, options)
    _SENT.clear()
    chunks = [list(names[i:i + CHUNK]) for i in range(0, len(names), CHUNK)]
    out: list[Prepared] = []
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            for chunk, done in zip(chunks, pool.imap(_prepare_chunk, chunks), strict=True):
                for item in done:
                    out.append(item if isinstance(item, Prepared)
                               else file_prepared(chunk[item], registry, options, set()))
    finally:
        _WORK = None
    return out


class CourseImports:
    """The import methods of :class:`~iptflow.store.api.Store`."""

    recorder: Any
    path: str
    registry: Registry
    _snapshot_every: int

    def _insert_course(self, course: Course, events: Sequence[tuple[str, Mapping[str, Any]]],
                       synthetic: bool, idempotency_key: str | None = None) -> str:
        raise NotImplementedError  # Store's

    def _remember(self, course_id: str, seq: int, hash_: str, course: Course) -> None:
        raise NotImplementedError  # Store's

    def _now(self) -> str | None:
        raise NotImplementedError  # Store's

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
        try:
            bodies = encoded(course.history, checked=True)
        except ValueError as exc:
            raise CourseFileError(f"not storable: {exc}", file=name) from None
        try:
            with self.recorder.write():
                if self.recorder.course_row(course.course_id) is not None:
                    raise RecordConflict(course.course_id)
                hash_ = self._insert_course(course, bodies, synthetic)
        except RecordConflict:  # stored before, or by another writer meanwhile (PostgreSQL)
            raise CourseExists(
                f"{name}: course {course.course_id} is already in {self.path}",
                course_id=course.course_id,
            ) from None
        self._remember(course.course_id, course.seq, hash_, course)
        return ImportResult(
            file=name,
            course_id=course.course_id,
            events=len(course.history),
            skipped=list(result.rejected),
            state=course.state,
        )

    def import_course_files(
        self,
        paths: Sequence[str | os.PathLike[str]],
        *,
        synthetic: bool = False,
        skip_rejected: bool = False,
        workers: int = 1,
    ) -> list[ImportResult]:
        """Replay course files and store their courses in one transaction: all of them or none.

        Each file is checked as :meth:`import_course_file` checks it, before anything is
        written; the first that is refused raises (:class:`ImportRefused`,
        :class:`~iptflow.errors.CourseFileError`, or :class:`CourseExists` for an id already
        stored or given twice), its message naming the file, and nothing of the batch is stored.
        ``workers`` > 1: the files are replayed in that many forked processes (from
        :data:`MIN_PARALLEL` files on); the result is the same.
        """
        if type(workers) is not int or workers < 1:
            raise InvalidArgument(f"workers must be an integer >= 1, got {workers!r}",
                                  argument="workers")
        names = [os.fspath(path) for path in paths]
        options = ImportOptions(synthetic, skip_rejected, self._snapshot_every, self._now())
        batch = prepared_files(names, self.registry, options, workers)
        self._insert_prepared(batch, [f"{name}: " for name in names])
        return [p.result for p in batch if p.result is not None]

    def _insert_prepared(self, batch: Sequence[Prepared], labels: Sequence[str]) -> None:
        """Write prepared courses in one transaction; :class:`CourseExists` (its message starts
        with the course's label) when one is given twice or already stored."""
        seen: dict[str, int] = {}
        for position, prepared in enumerate(batch):
            course_id = prepared.rows.course[0]
            if course_id in seen:
                raise CourseExists(f"{labels[position]}course {course_id} is given twice in this "
                                   "batch", course_id=course_id)
            seen[course_id] = position
        try:
            with self.recorder.write():
                self.recorder.insert_courses([p.protocol for p in batch if p.protocol is not None],
                                             [p.rows for p in batch])
                self.recorder.put_snapshots([p.snapshot for p in batch if p.snapshot is not None])
        except RecordConflict as exc:  # stored before, or by another writer meanwhile
            course_id = exc.course_id or ""
            label = labels[seen[course_id]] if course_id in seen else ""
            raise CourseExists(f"{label}course {course_id} is already in {self.path}",
                               course_id=course_id) from None

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
        or given twice, raises :class:`CourseExists`. A source that is none of these, an empty
        sequence, or a course whose events cannot be stored as JSON text raises
        :class:`ImportRefused` naming its ``position`` (0-based).
        """
        if isinstance(sources, str | bytes | Mapping) or not isinstance(sources, Iterable):
            raise InvalidArgument(
                f"sources must be an iterable of sources, got {type(sources).__name__}"
            )
        options = ImportOptions(synthetic, False, self._snapshot_every, self._now())
        sent: set[str] = set()
        batch = []
        for position, source in enumerate(sources):
            course = course_of(source, self.registry, position)
            try:
                bodies = encoded(course.history)
            except ValueError as exc:
                raise ImportRefused(f"source {position}: not storable: {exc}",
                                    position=position) from None
            batch.append(course_prepared(course, bodies, options, sent))
        self._insert_prepared(batch, [""] * len(batch))
        return [p.rows.course[0] for p in batch]

