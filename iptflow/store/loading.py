"""From stored rows to courses: pinned protocols, the replay of a stored log, derived rows.

:func:`replay_log` is where the store replays a log (loading a course, validating events
given to ``Store.import_many``, ``Store.verify``, an idempotent retry's result through
:func:`stored_result`): it returns the course, or the first rejected event with its seq.
:class:`PinnedProtocols` compiles a course's protocol from the JSON it was stored as;
:func:`derived_columns` is the summary the course row keeps per event.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from iptflow.engine.course import Course, Replayed
from iptflow.engine.machine import CompiledProtocol
from iptflow.engine.registry import Registry
from iptflow.engine.results import Accepted, Rejection, Result
from iptflow.errors import ProtocolError
from iptflow.protocol.models import ResolvedProtocol
from iptflow.store.errors import CorruptCourse, MissingProtocol
from iptflow.store.hashing import decode_event
from iptflow.store.recorder import Recorder
from iptflow.store.snapshots import usable_snapshot

__all__ = [
    "PinnedProtocols",
    "Replayed",
    "continue_log",
    "decode_log",
    "derived_columns",
    "load_course",
    "replay_log",
    "stored_result",
]


def replay_log(
    events: Sequence[Mapping[str, Any]],
    registry: Registry,
    compiled: CompiledProtocol | None = None,
) -> Replayed:
    """Replay a stored log without calling observers (loading, import validation, verify).

    ``compiled`` is the protocol the course was opened under (``None``: resolve it from
    ``course_opened``; an unknown protocol raises :class:`~iptflow.errors.ProtocolError`).
    ``replayed.ok`` is false when an event is rejected: ``replayed.result`` is the rejection
    and ``replayed.seq`` its position. The loop itself is the engine's
    :meth:`~iptflow.engine.course.Course.replay_until_rejected`.
    """
    return Course.replay_until_rejected(events, registry, notify=False, compiled=compiled)


def stored_result(course_id: str, bodies: Sequence[Any], compiled: CompiledProtocol) -> Result:
    """The result the last of ``bodies`` got when it was stored (idempotent retries).

    Raises :class:`CorruptCourse` if an event is rejected on replay.
    """
    replayed = replay_log(bodies, compiled.registry, compiled)
    if not replayed.ok:
        raise CorruptCourse(
            f"course {course_id}: event {replayed.seq} is rejected on replay ({replayed.result.code})",
            course_id=course_id,
            seq=replayed.seq,
        )
    return replayed.result


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
    row: Mapping[str, Any],
    events: Sequence[Mapping[str, Any]],
    compiled: CompiledProtocol,
    migrated: Sequence[Mapping[str, Any]] = (),
    snapshot: Mapping[str, Any] | None = None,
) -> Course:
    """Rebuild a course from its course row and event rows; check it against the course row.

    ``snapshot``: the course's ``snapshots`` row, if any: when it is usable
    (:func:`~iptflow.store.snapshots.usable_snapshot`) the course is restored from it and only
    the events after it are applied; otherwise the whole log is replayed.

    ``migrated``: the course's ``protocol_migrated`` records (its chain may end with one made
    after the last event; :func:`~iptflow.store.verify.check_log` checks the chain). Raises
    :class:`CorruptCourse` when the log is empty, does not replay, or disagrees with the row's
    last seq or last hash.
    """
    course_id = row["id"]
    if not events:
        raise CorruptCourse(f"course {course_id}: its log is empty", course_id=course_id)
    bodies = decode_log(course_id, events)
    restored = usable_snapshot(snapshot, events, bodies, compiled)
    if restored is None:
        replayed = replay_log(bodies, compiled.registry, compiled)
    else:
        replayed = continue_log(restored, bodies)
    if not replayed.ok:
        assert isinstance(replayed.result, Rejection)
        raise CorruptCourse(
            f"course {course_id}: event {replayed.seq} is rejected on replay "
            f"({replayed.result.code}: {replayed.result.message})",
            course_id=course_id,
            seq=replayed.seq,
        )
    course = replayed.course
    assert course is not None
    last = events[-1]
    if course.seq != row["last_seq"] or last["seq"] != row["last_seq"]:
        raise CorruptCourse(
            f"course {course_id}: the course row says last seq {row['last_seq']}, "
            f"the log replays to {course.seq}",
            course_id=course_id,
        )
    # the chain ends with the last event or a record made after it (``migrated`` may have been
    # read after the row: records are append-only, so any of them may be the row's end)
    ends = {last["hash"]} | {m["hash"] for m in migrated if m["after_seq"] == last["seq"]}
    if row["last_hash"] not in ends:
        raise CorruptCourse(
            f"course {course_id}: the course row's last hash does not match event {last['seq']}"
            + (" or a migration record after it" if len(ends) > 1 else ""),
            course_id=course_id,
            seq=last["seq"],
        )
    return course


def continue_log(course: Course, bodies: Sequence[Any]) -> Replayed:
    """Apply the events of ``bodies`` (a whole log) after the restored snapshot ``course``
    (observers off), as :func:`replay_log` would."""
    notify, course._notify = course._notify, False
    seq = course.seq
    result: Result = Accepted(seq, str(bodies[seq - 1].get("type")), course.state, None)
    for raw in bodies[seq:]:
        seq += 1
        result = course.apply(raw)
        if not result.ok:
            break
    course._notify = notify
    return Replayed(course, result, seq)


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
