"""From stored rows to courses: pinned protocols, the replay of a stored log, derived rows.

:func:`replay_log` is where the store replays a log (loading a course, validating events
given to ``Store.import_many``, ``Store.verify``): it returns the course or the first rejected
event with its seq; :func:`stored_result` replays for an idempotent retry's result.
:class:`PinnedProtocols` compiles a course's protocol from the JSON it was stored as;
:func:`derived_columns` is the summary the course row keeps per event.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from operator import length_hint
from typing import Any

from pydantic import ValidationError

from iptflow.engine.course import Course
from iptflow.engine.machine import CompiledProtocol
from iptflow.engine.registry import Registry
from iptflow.engine.results import Rejection, Result
from iptflow.errors import EventRejected, ProtocolError
from iptflow.protocol.models import ResolvedProtocol
from iptflow.store.errors import CorruptCourse, MissingProtocol
from iptflow.store.hashing import decode_event
from iptflow.store.recorder import Recorder

__all__ = [
    "PinnedProtocols",
    "Replayed",
    "decode_log",
    "derived_columns",
    "load_course",
    "replay_log",
    "stored_result",
]


@dataclass(frozen=True, slots=True)
class Replayed:
    """A replayed log: the course, or the first rejected event (``seq``, 1-based) and why."""

    course: Course | None
    rejection: Rejection | None = None
    seq: int | None = None

    @property
    def ok(self) -> bool:
        return self.course is not None


def replay_log(
    events: Sequence[Mapping[str, Any]],
    registry: Registry,
    compiled: CompiledProtocol | None = None,
) -> Replayed:
    """Replay accepted events without calling observers (``Course.replay(notify=False)``).

    ``compiled`` is the protocol the course was opened under (``None``: resolve it from
    ``course_opened``; an unknown protocol raises :class:`~iptflow.errors.ProtocolError`).
    """
    if not events:
        return Replayed(None, Rejection("no_course", "the log is empty: it has no course_opened"), 1)
    remaining = iter(events)  # Course.replay consumes this iterator: what is left names the seq
    try:
        course = Course.replay(remaining, registry, notify=False, compiled=compiled)
    except EventRejected as exc:
        return Replayed(None, exc.rejection, len(events) - length_hint(remaining))
    return Replayed(course)


def stored_result(course_id: str, bodies: Sequence[Any], compiled: CompiledProtocol) -> Result:
    """The result the last of ``bodies`` got when it was stored (idempotent retries).

    The one replay besides :func:`replay_log`, which cannot give it: ``Course.replay`` returns
    no results, and the course it returns calls observers for any event applied after it. This
    course never calls them. Raises :class:`CorruptCourse` if an event is rejected.
    """
    course, result = Course.try_open(bodies[0], compiled.registry, notify=False, compiled=compiled)
    for body in bodies[1:]:
        if course is None or not result.ok:
            break
        result = course.apply(body)
    if not result.ok:
        seq = len(bodies)
        raise CorruptCourse(
            f"course {course_id}: event {seq} is rejected on replay ({result.code})",
            course_id=course_id,
            seq=seq,
        )
    return result


def decode_log(course_id: str, events: Sequence[Mapping[str, Any]]) -> list[Any]:
    """The bodies of stored event rows; :class:`CorruptCourse` names the first that is not JSON."""
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
    return bodies


def load_course(
    row: Mapping[str, Any], events: Sequence[Mapping[str, Any]], compiled: CompiledProtocol
) -> Course:
    """Rebuild a course from its course row and event rows; check it against the course row.

    Raises :class:`CorruptCourse` when the log is empty, does not replay, or disagrees with the
    row's last seq or last hash.
    """
    course_id = row["id"]
    if not events:
        raise CorruptCourse(f"course {course_id}: its log is empty", course_id=course_id)
    replayed = replay_log(decode_log(course_id, events), compiled.registry, compiled)
    if replayed.course is None:
        assert replayed.rejection is not None
        raise CorruptCourse(
            f"course {course_id}: event {replayed.seq} is rejected on replay "
            f"({replayed.rejection.code}: {replayed.rejection.message})",
            course_id=course_id,
            seq=replayed.seq,
        )
    course = replayed.course
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


def derived_columns(course: Course) -> dict[str, Any]:
    """The course row's summary columns for ``course`` (written with each event, checked by
    ``verify``)."""
    outcome = course.outcome
    return {
        "state": course.state,
        "last_seq": course.seq,
        "sessions_held": course.sessions_held,
        "outcome_status": outcome.status if outcome else None,
        "open_reviews": json.dumps(course.open_reviews),
        "deviations": len(course.deviations),
    }


class PinnedProtocols:
    """The store's resolved protocols, compiled from the JSON each was stored as (cached)."""

    def __init__(self, recorder: Recorder, registry: Callable[[], Registry]) -> None:
        self._recorder = recorder
        self._registry = registry
        self._compiled: dict[str, CompiledProtocol] = {}

    def forget(self, fingerprint: str) -> None:
        """Drop a compiled protocol from the cache (the next :meth:`compiled` checks it again)."""
        self._compiled.pop(fingerprint, None)

    def compiled(self, fingerprint: str, course_id: str | None = None) -> CompiledProtocol:
        """The protocol stored under ``fingerprint``, compiled with the installed plugins.

        Raises :class:`MissingProtocol` (not stored, or not compilable) or
        :class:`CorruptCourse` (changed after it was stored); messages name ``course_id``.
        """
        compiled = self._compiled.get(fingerprint)
        if compiled is not None:
            return compiled
        where = f"course {course_id}: " if course_id is not None else ""
        text = self._recorder.protocol_json(fingerprint)
        if text is None:
            raise MissingProtocol(
                f"{where}its resolved protocol {fingerprint} is not in the store",
                course_id=course_id,
                fingerprint=fingerprint,
            )
        try:
            resolved = ResolvedProtocol.model_validate_json(text)
        except ValidationError as exc:
            raise CorruptCourse(
                f"{where}the stored protocol {fingerprint} does not validate: "
                f"{exc.error_count()} problem(s), first: {exc.errors()[0]['msg']}",
                course_id=course_id,
                fingerprint=fingerprint,
            ) from None
        if resolved.fingerprint != fingerprint:
            raise CorruptCourse(
                f"{where}the stored protocol under {fingerprint} has fingerprint "
                f"{resolved.fingerprint} (it was changed after it was stored)",
                course_id=course_id,
                fingerprint=fingerprint,
            )
        try:
            compiled = self._registry().compile_resolved(resolved)
        except ProtocolError as exc:
            raise MissingProtocol(
                f"{where}its protocol {resolved.id} {resolved.version} cannot be "
                f"compiled with the installed plugins: {exc.message}",
                course_id=course_id,
                fingerprint=fingerprint,
            ) from None
        self._compiled[fingerprint] = compiled
        return compiled
