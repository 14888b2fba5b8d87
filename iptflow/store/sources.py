"""What ``Store.import_course_file`` and ``Store.import_many`` accept, checked before writing.

A source becomes a :class:`~iptflow.Course` here (course files replay as ``iptflow replay``
does, event sequences through :func:`~iptflow.store.loading.replay_log`); a source that does
not replay cleanly raises, so the store writes all of a batch or none of it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from iptflow.engine.course import Course
from iptflow.engine.registry import Registry
from iptflow.engine.replay import ReplayResult, replay_file
from iptflow.engine.results import Rejection
from iptflow.errors import EventRejected
from iptflow.store.errors import ImportRefused
from iptflow.store.loading import replay_log

__all__ = ["Source", "course_of", "replayed_file"]

Source = Course | Sequence[Mapping[str, Any]] | str | os.PathLike[str]


def replayed_file(name: str, registry: Registry, *, skip_rejected: bool) -> ReplayResult:
    """A course file replayed, with its course; :class:`ImportRefused` if the course was not
    opened, or (unless ``skip_rejected``) an event was rejected unexpectedly or an expectation
    failed. An unusable file raises :class:`~iptflow.errors.CourseFileError`."""
    result = replay_file(name, registry)
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
    return result


def course_of(source: Source, registry: Registry, position: int = 0) -> Course:
    """The course of one ``import_many`` source (its ``position``, 0-based, names it in
    errors): a Course as it is, a course file that must replay cleanly
    (:class:`ImportRefused`), or a non-empty sequence of events that must all be accepted
    (:class:`~iptflow.errors.EventRejected`). Anything else is :class:`ImportRefused`."""
    if isinstance(source, Course):
        return source
    if isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
        result = replay_file(name, registry)
        if result.course is None or result.exit_status != 0:
            raise ImportRefused(
                f"source {position}: {name}: not imported: it does not replay cleanly "
                f"(iptflow replay {name} shows why)",
                file=name, position=position,
            )
        return result.course
    if not isinstance(source, Sequence) or isinstance(source, bytes | bytearray):
        raise ImportRefused(
            f"source {position}: not a Course, a sequence of events or a course file path "
            f"(got {type(source).__name__})",
            position=position,
        )
    if not source:
        raise ImportRefused(f"source {position}: an empty sequence of events (no course_opened)",
                            position=position)
    replayed = replay_log(list(source), registry)
    if not replayed.ok:
        assert isinstance(replayed.result, Rejection)
        raise EventRejected(replayed.result)
    assert replayed.course is not None
    return replayed.course
