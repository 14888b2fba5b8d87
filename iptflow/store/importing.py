"""``Store``'s imports: course files and other sources stored whole, with every event the
engine accepted, hash-chained as ``apply`` would have written them (docs/store.md).

:class:`CourseImports` is a part of :class:`~iptflow.store.api.Store` (it inherits it); each
source is checked (:mod:`~iptflow.store.sources`) before anything of its transaction is written.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from iptflow.engine.course import Course
from iptflow.engine.registry import Registry
from iptflow.errors import CourseFileError
from iptflow.store.errors import CourseExists, ImportRefused, InvalidArgument
from iptflow.store.hashing import encoded
from iptflow.store.recorder import RecordConflict
from iptflow.store.rows import ImportResult
from iptflow.store.sources import Source, course_of, replayed_file

__all__ = ["CourseImports"]


class CourseImports:
    """The import methods of :class:`~iptflow.store.api.Store`."""

    recorder: Any
    path: str
    registry: Registry

    def _insert_course(self, course: Course, events: Sequence[tuple[str, Mapping[str, Any]]],
                       synthetic: bool, idempotency_key: str | None = None) -> str:
        raise NotImplementedError  # Store's

    def _remember(self, course_id: str, seq: int, hash_: str, course: Course) -> None:
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
            bodies = encoded(course.history)
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
    ) -> list[ImportResult]:
        """Replay course files and store their courses in one transaction: all of them or none.

        Each file is checked as :meth:`import_course_file` checks it, before anything is
        written; the first that is refused raises (:class:`ImportRefused`,
        :class:`~iptflow.errors.CourseFileError`, or :class:`CourseExists` for an id already
        stored or given twice), its message naming the file, and nothing of the batch is stored.
        """
        prepared = []
        for path in paths:
            name = os.fspath(path)
            result = replayed_file(name, self.registry, skip_rejected=skip_rejected)
            assert result.course is not None
            try:
                prepared.append((name, result, encoded(result.course.history)))
            except ValueError as exc:
                raise CourseFileError(f"not storable: {exc}", file=name) from None
        seen: set[str] = set()
        name, cid = "", ""
        try:
            with self.recorder.write():
                for file_name, result, bodies in prepared:
                    assert result.course is not None
                    name, cid = file_name, result.course.course_id
                    if cid in seen or self.recorder.course_row(cid) is not None:
                        raise RecordConflict(cid)
                    seen.add(cid)
                    self._insert_course(result.course, bodies, synthetic)
        except RecordConflict:  # stored before, given twice, or by another writer meanwhile
            raise CourseExists(f"{name}: course {cid} is already in {self.path}", course_id=cid) from None
        return [
            ImportResult(file=name, course_id=result.course.course_id, events=len(result.course.history),
                         skipped=list(result.rejected), state=result.course.state)
            for name, result, _ in prepared if result.course is not None
        ]

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
        pending = []
        for position, source in enumerate(sources):
            course = course_of(source, self.registry, position)
            try:
                pending.append((course, encoded(course.history)))
            except ValueError as exc:
                raise ImportRefused(f"source {position}: not storable: {exc}",
                                    position=position) from None
        ids: list[str] = []
        seen: set[str] = set()
        cid = ""
        try:
            with self.recorder.write():
                for course, bodies in pending:
                    cid = course.course_id
                    if cid in seen or self.recorder.course_row(cid) is not None:
                        raise RecordConflict(cid)
                    seen.add(cid)
                    self._insert_course(course, bodies, synthetic)
                    ids.append(cid)
        except RecordConflict:  # stored before, given twice, or by another writer meanwhile
            raise CourseExists(f"course {cid} is already in {self.path}", course_id=cid) from None
        return ids

