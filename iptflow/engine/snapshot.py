"""A course's derived state as data: what :meth:`Course.from_snapshot
<iptflow.engine.course.Course.from_snapshot>` needs to continue a course without replaying it.

``Course.to_snapshot()`` gives a JSON-ready mapping (the store keeps one per course,
docs/store.md#snapshots); ``Course.from_snapshot(compiled, data)`` checks it and restores the
course exactly: state, seq, every fact (measures, sessions, the baseline's identity among the
measures, event counts, reviews, tasks, records, the last time) and the deviations. The
mapping names what wrote it:

* ``format``: :data:`SNAPSHOT_FORMAT`, raised whenever what a course derives from its events
  changes shape or meaning (a snapshot of another format is refused);
* ``engine``: the iptflow version that wrote it (:data:`ENGINE_VERSION`);
* ``fingerprint``: the resolved protocol the course ran on (it must be the ``compiled`` one).

A snapshot never replaces the log: the events stay the truth, and a snapshot that is refused
is rebuilt by replaying them.
"""

from __future__ import annotations

from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from iptflow.engine.facts import Facts, Measure, Session
from iptflow.engine.results import Deviation
from iptflow.errors import IptflowError

if TYPE_CHECKING:
    from iptflow.engine.course import Course
    from iptflow.engine.machine import CompiledProtocol

__all__ = ["ENGINE_VERSION", "SNAPSHOT_FORMAT", "InvalidSnapshot", "restore", "snapshot_data"]

#: The snapshot layout and the meaning of its facts; raise it when either changes.
SNAPSHOT_FORMAT = 1

try:
    ENGINE_VERSION: str = version("iptflow")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without metadata
    ENGINE_VERSION = "0.0.0"

_KEYS = frozenset({"format", "engine", "fingerprint", "course_id", "state", "seq", "facts",
                   "deviations"})
_FACT_KEYS = frozenset({"format", "patient_age", "diagnosis", "psychotic_features", "baseline",
                        "measures", "sessions", "sessions_by_state", "acute_sessions",
                        "missed_sessions", "missed_run", "problem_areas", "planned_sessions",
                        "maintenance", "open_reviews", "tasks", "event_counts", "records",
                        "last_at"})


class InvalidSnapshot(IptflowError):
    """Data that is not a snapshot of a course on the given compiled protocol."""

    code = "invalid_snapshot"


def snapshot_data(course: Course) -> dict[str, Any]:
    """The snapshot of ``course`` (see the module docstring); shares nothing with it."""
    facts = course.facts
    measures = facts.measures
    baseline: int | list[Any] | None = None
    if facts.baseline is not None:
        baseline = next((i for i, m in enumerate(measures) if m is facts.baseline), None)
        if baseline is None:  # pragma: no cover - every effect takes the baseline from measures
            baseline = _measure_row(facts.baseline)
    return {
        "format": SNAPSHOT_FORMAT,
        "engine": ENGINE_VERSION,
        "fingerprint": course.protocol.fingerprint,
        "course_id": facts.course_id,
        "state": course.state,
        "seq": course.seq,
        "facts": {
            "format": facts.format,
            "patient_age": facts.patient_age,
            "diagnosis": facts.diagnosis,
            "psychotic_features": facts.psychotic_features,
            "baseline": baseline,
            "measures": [_measure_row(m) for m in measures],
            "sessions": [[s.number, s.state, s.at.isoformat(), list(s.techniques), s.seq]
                         for s in facts.sessions],
            "sessions_by_state": dict(facts.sessions_by_state),
            "acute_sessions": facts.acute_sessions,
            "missed_sessions": facts.missed_sessions,
            "missed_run": facts.missed_run,
            "problem_areas": [dict(a) for a in facts.problem_areas],
            "planned_sessions": facts.planned_sessions,
            "maintenance": _plain(facts.maintenance),
            "open_reviews": sorted(facts.open_reviews),
            "tasks": sorted(facts.tasks),
            "event_counts": [[t, s, n] for (t, s), n in facts.event_counts.items()],
            "records": _plain(facts.records),
            "last_at": facts.last_at.isoformat() if facts.last_at is not None else None,
        },
        "deviations": [[d.code, d.message, d.seq, d.event_type, d.at.isoformat()]
                       for d in course.deviations],
    }


def _measure_row(m: Measure) -> list[Any]:
    items = list(m.items) if m.items is not None else None
    return [m.instrument, m.score, items, m.state, m.at.isoformat(), m.seq, m.item9]


def _plain(value: Any) -> Any:
    """A deep copy of JSON-like data (dicts, lists, scalars)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def restore(course: Course, compiled: CompiledProtocol, data: Any) -> None:
    """Set every attribute of the blank ``course`` (``Course.__new__``) from ``data``.

    Raises :class:`InvalidSnapshot` naming what is wrong: not a snapshot, another format,
    another engine version or protocol, a state the protocol does not have, facts of the
    wrong shape. ``data`` itself is not kept (the course shares nothing with it).
    """
    if not isinstance(data, dict) or set(data) != _KEYS:
        raise InvalidSnapshot("not a course snapshot: expected the keys " + ", ".join(sorted(_KEYS)))
    if data["format"] != SNAPSHOT_FORMAT or data["engine"] != ENGINE_VERSION:
        raise InvalidSnapshot(
            f"the snapshot was written by iptflow {data['engine']!r} in format "
            f"{data['format']!r}; this is iptflow {ENGINE_VERSION} (format {SNAPSHOT_FORMAT})"
        )
    protocol = compiled.protocol
    if data["fingerprint"] != protocol.fingerprint:
        raise InvalidSnapshot(f"the snapshot is of protocol {data['fingerprint']!r}, not "
                              f"{protocol.fingerprint}")
    state, seq = data["state"], data["seq"]
    if not isinstance(state, str) or state not in compiled.machine.states:
        raise InvalidSnapshot(f"state {state!r} is not a state of {protocol.id}")
    if type(seq) is not int or seq < 1:
        raise InvalidSnapshot(f"seq must be an integer >= 1, got {seq!r}")
    course_id = data["course_id"]
    if not isinstance(course_id, str) or not course_id:
        raise InvalidSnapshot("course_id must be a non-empty string")
    try:
        facts = _facts(course_id, data["facts"], compiled)
        deviations = [Deviation(_str(c), _str(msg), _int(s), _str(t), _time(at))
                      for c, msg, s, t, at in data["deviations"]]
    except (TypeError, ValueError, KeyError) as exc:
        raise InvalidSnapshot(f"the snapshot's facts do not validate: {exc}") from None
    course._compiled = compiled
    course.state = state
    course.seq = seq
    course.facts = facts
    course.deviations = deviations
    course.history = []
    course._notify = compiled.registry.has_observers
    course._rebuild = None


def _facts(course_id: str, f: Any, compiled: CompiledProtocol) -> Facts:
    if not isinstance(f, dict) or set(f) != _FACT_KEYS:
        raise ValueError("expected the keys " + ", ".join(sorted(_FACT_KEYS)))
    instruments = compiled.protocol.instruments
    measures = [_measure(row, instruments) for row in f["measures"]]
    baseline = f["baseline"]
    if baseline is None:
        base = None
    elif type(baseline) is int:
        if not 0 <= baseline < len(measures):
            raise ValueError(f"baseline {baseline} is not one of the {len(measures)} measures")
        base = measures[baseline]
    else:
        base = _measure(baseline, instruments)
    return Facts(
        course_id=course_id,
        format=_str(f["format"]),
        patient_age=_opt(f["patient_age"], int),
        diagnosis=_opt(f["diagnosis"], str),
        psychotic_features=_bool(f["psychotic_features"]),
        baseline=base,
        measures=measures,
        sessions=[Session(_int(n), _str(s), _time(at), [_str(t) for t in techniques], _int(q))
                  for n, s, at, techniques, q in f["sessions"]],
        sessions_by_state={_str(k): _int(v) for k, v in _dict(f["sessions_by_state"]).items()},
        acute_sessions=_int(f["acute_sessions"]),
        missed_sessions=_int(f["missed_sessions"]),
        missed_run=_int(f["missed_run"]),
        problem_areas=[{_str(k): _str(v) for k, v in _dict(a).items()} for a in f["problem_areas"]],
        planned_sessions=_opt(f["planned_sessions"], int),
        maintenance=_plain(_dict(f["maintenance"])) if f["maintenance"] is not None else None,
        open_reviews={_str(r) for r in f["open_reviews"]},
        tasks={_str(t) for t in f["tasks"]},
        event_counts={(_str(t), _str(s)): _int(n) for t, s, n in f["event_counts"]},
        records=_plain(_dict(f["records"])),
        last_at=_time(f["last_at"]) if f["last_at"] is not None else None,
    )


def _measure(row: Any, instruments: Any) -> Measure:
    instrument, score, items, state, at, seq, item9 = row
    if instrument not in instruments:
        raise ValueError(f"unknown instrument {instrument!r}")
    if type(score) is not int and type(score) is not float:
        raise ValueError(f"score {score!r} is not a number")
    if items is not None:
        if type(items) is not list or not _INT.issuperset(map(type, items)):
            raise ValueError(f"items {items!r} are not a list of integers")
        items = items.copy()
    if type(state) is not str or type(seq) is not int or (item9 is not None and type(item9) is not int):
        raise ValueError(f"measure {row!r} has a state, seq or item9 of the wrong type")
    return Measure(instrument, score, items, state, _time(at), seq, item9)


_INT = frozenset({int})  # the type of every item of a measure (not bool)


def _time(value: Any) -> datetime:
    if type(value) is not str:
        raise ValueError(f"expected a string, got {value!r}")
    at = datetime.fromisoformat(value)
    if at.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone")
    return at


def _str(value: Any) -> str:
    if type(value) is not str:
        raise ValueError(f"expected a string, got {value!r}")
    return value


def _int(value: Any) -> int:
    if type(value) is not int:
        raise ValueError(f"expected an integer, got {value!r}")
    return value


def _bool(value: Any) -> bool:
    if type(value) is not bool:
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def _dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"expected an object, got {value!r}")
    return value


def _opt(value: Any, kind: type) -> Any:
    if value is None:
        return None
    return _int(value) if kind is int else _str(value)
