"""From stored rows to courses: pinned protocols, the replay of a stored log, derived rows.

:func:`replay_log` is where the store replays a log (loading a course, validating events
given to ``Store.import_many``, ``Store.verify``, an idempotent retry's result through
:func:`stored_result`): it returns the course, or the first rejected event with its seq.
:func:`load_log` loads a stored course (from its snapshot when it has a usable one, its
history then decoded only when read: docs/store.md#snapshots);
:class:`PinnedProtocols` compiles a course's protocol from the JSON it was stored as;
:func:`derived_columns` is the summary the course row keeps per event.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from iptflow.engine.course import Course, Replayed
from iptflow.engine.history import LazyHistory
from iptflow.engine.machine import CompiledProtocol
from iptflow.engine.registry import Registry
from iptflow.engine.results import Accepted, Rejection, Result
from iptflow.errors import ProtocolError
from iptflow.protocol.models import ResolvedProtocol
from iptflow.store.errors import CorruptCourse, MissingProtocol
from iptflow.store.hashing import decode_event
from iptflow.store.recorder import Recorder
from iptflow.store.snapshots import LogRow, restored_course, snapshot_seq

__all__ = [
    "PinnedProtocols",
    "Replayed",
    "continue_log",
    "decode_log",
    "derived_columns",
    "load_course",
    "load_log",
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
    return [_decode(course_id, (ev["seq"], "", ev["body"])) for ev in events]


def load_course(
    row: Mapping[str, Any],
    events: Sequence[Mapping[str, Any]],
    compiled: CompiledProtocol,
    migrated: Sequence[Mapping[str, Any]] = (),
    snapshot: Mapping[str, Any] | None = None,
) -> Course:
    """:func:`load_log` for event rows given as mappings (``seq``, ``hash``, ``body``); every
    body is decoded first (the course's ``history`` is a plain list)."""
    log = [(ev["seq"], ev["hash"], ev["body"]) for ev in events]
    return load_log(row, log, compiled, migrated, snapshot, decode_log(row["id"], events))


def load_log(
    row: Mapping[str, Any],
    log: Sequence[LogRow],
    compiled: CompiledProtocol,
    migrated: Sequence[Mapping[str, Any]] = (),
    snapshot: Mapping[str, Any] | None = None,
    bodies: list[Any] | None = None,
) -> Course:
    """Rebuild a course from its course row and ``(seq, hash, body)`` event rows; check it
    against the course row.

    ``snapshot``: the course's ``snapshots`` row, if any: when it is usable
    (:mod:`iptflow.store.snapshots`) the course is restored from it and only the events after
    it are decoded and applied; otherwise every body is decoded and the whole log replayed.
    ``bodies``: the decoded bodies when the caller has them (``get(verify=True)``). Without
    them, the events up to a usable snapshot are neither replayed nor decoded: the course's
    ``history`` is then a :class:`~iptflow.engine.history.LazyHistory` that decodes each the
    first time it is read, and a body that is not JSON raises :class:`CorruptCourse` (naming
    the course and its seq) from that read.

    ``migrated``: the course's ``protocol_migrated`` records (its chain may end with one made
    after the last event; :func:`~iptflow.store.verify.check_log` checks the chain). Raises
    :class:`CorruptCourse` when the log is empty, does not replay, or disagrees with the row's
    last seq or last hash.
    """
    course_id = row["id"]
    if not log:
        raise CorruptCourse(f"course {course_id}: its log is empty", course_id=course_id)
    course = _from_snapshot(course_id, log, compiled, snapshot, bodies)
    if course is None:
        if bodies is None:
            bodies = [_decode(course_id, r) for r in log]
        replayed = replay_log(bodies, compiled.registry, compiled)
    else:
        replayed = _continue(course, log)
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
    _check_row(row, log[-1], course.seq, migrated)
    return course


def _check_row(row: Mapping[str, Any], last: LogRow, seq: int,
               migrated: Sequence[Mapping[str, Any]]) -> None:
    """:class:`CorruptCourse` unless the course row ends where the log does (``seq``: where
    the loaded course is, ``last``: the last event row)."""
    course_id = row["id"]
    last_seq, last_hash = last[0], last[1]
    if seq != row["last_seq"] or last_seq != row["last_seq"]:
        raise CorruptCourse(
            f"course {course_id}: the course row says last seq {row['last_seq']}, "
            f"the log replays to {seq}",
            course_id=course_id,
        )
    # the chain ends with the last event or a record made after it (``migrated`` may have been
    # read after the row: records are append-only, so any of them may be the row's end)
    ends = {last_hash} | {m["hash"] for m in migrated if m["after_seq"] == last_seq}
    if row["last_hash"] not in ends:
        raise CorruptCourse(
            f"course {course_id}: the course row's last hash does not match event {last_seq}"
            + (" or a migration record after it" if len(ends) > 1 else ""),
            course_id=course_id,
            seq=last_seq,
        )


def _from_snapshot(course_id: str, log: Sequence[LogRow], compiled: CompiledProtocol,
                   snapshot: Mapping[str, Any] | None, bodies: list[Any] | None) -> Course | None:
    """The course restored from a usable ``snapshot`` with its events up to it as history
    (decoded lazily unless ``bodies`` are given), or ``None``."""
    if snapshot is None:
        return None
    seq = snapshot_seq(snapshot, course_id, [r[1] for r in log], compiled)
    if seq is None:
        return None
    if bodies is not None:
        history: list[Any] | LazyHistory = bodies[:seq]
    else:
        history = LazyHistory([r[2] for r in log[:seq]], _LogDecoder(course_id, log))
    return restored_course(snapshot, course_id, compiled, history)


def _continue(course: Course, log: Sequence[LogRow]) -> Replayed:
    """:func:`continue_log` for the restored ``course`` whose events after the snapshot are the
    rows of ``log`` past its seq (decoded here; the one at the snapshot is its history's last)."""
    course_id, seq = course.course_id, course.seq
    rest = [_decode(course_id, r) for r in log[seq:]]
    # loading reads only whether the rest is accepted: the event at the snapshot stays undecoded
    return _apply_rest(course, rest, Accepted(seq, "", course.state, None))


def _decode(course_id: str, r: LogRow) -> Any:
    """The body of the event row ``r``; :class:`CorruptCourse` (naming it) if it is not JSON."""
    try:
        return decode_event(r[2])
    except ValueError as exc:
        raise CorruptCourse(
            f"course {course_id}: event {r[0]} is not valid JSON: {exc}",
            course_id=course_id,
            seq=r[0],
        ) from None


class _LogDecoder:
    """The decoder of a course's :class:`LazyHistory`: event ``index`` is the row ``log[index]``."""

    __slots__ = ("course_id", "log")

    def __init__(self, course_id: str, log: Sequence[LogRow]) -> None:
        self.course_id = course_id
        self.log = log

    def __call__(self, index: int, text: str) -> Any:
        return _decode(self.course_id, self.log[index])


def continue_log(course: Course, bodies: Sequence[Any]) -> Replayed:
    """Apply the events of ``bodies`` (a whole log) after the restored snapshot ``course``
    (observers off), as :func:`replay_log` would."""
    seq = course.seq
    last = Accepted(seq, str(bodies[seq - 1].get("type")), course.state, None)
    return _apply_rest(course, bodies[seq:], last)


def _apply_rest(course: Course, rest: Iterable[Any], result: Result) -> Replayed:
    """Apply ``rest`` to ``course`` (observers off) until one is rejected; ``result``: the
    course's last event's (the result when ``rest`` is empty)."""
    notify, course._notify = course._notify, False
    seq = course.seq
    for raw in rest:
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
