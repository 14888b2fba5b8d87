"""The per-course facts of ``iptflow report`` that no store table derives: days in each phase,
deviation codes, the outcome instrument, and the trajectory (the latest score of the baseline
instrument at the end of each phase, as percent of baseline).

One implementation, :class:`FactsTracker`, fed each accepted event of a course, serves both
paths that write the report tables (:mod:`iptflow.store.report_tables`):

* the simulation feeds it live while it simulates a course (``iptflow simulate`` stores each
  chunk's report rows right after the chunk: no second replay);
* :func:`refresh_report_rows` replays the log of every course whose rows are missing or
  stale (an event appended since, a protocol migration, a store copied or written by an older
  release) on the protocol it is pinned to, feeding the same tracker.

The rules (those of the report since 0.1):

* a phase is ``state_def(state).phase`` (the state's name when it has none); a course enters
  a phase at the event after which its state is in it, and leaves it at the event that moves
  it to another phase or to a final state; a phase still open ends at the course's last
  event; days are summed when a course enters a phase twice;
* the trajectory only counts events after which the course is in a non-final state, with a
  baseline whose score is not zero and a measure of the baseline's instrument: the last such
  event in each phase gives that phase's percent.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from iptflow.engine.course import Course
from iptflow.engine.events import parse_timestamp
from iptflow.engine.facts import Measure
from iptflow.engine.machine import CompiledProtocol
from iptflow.store.api import Store
from iptflow.store.report_tables import ReportRows, event_bodies, stale_courses, write_report_rows

__all__ = ["FactsTracker", "refresh_report_rows", "replay_facts", "stale_report_facts"]

END = "end"

_PHASES: weakref.WeakKeyDictionary[CompiledProtocol, dict[str, str]] = weakref.WeakKeyDictionary()


def phase_of(compiled: CompiledProtocol, state: str) -> str:
    """The report phase of ``state``: its ``phase``, or its own name when it has none."""
    phases = _PHASES.setdefault(compiled, {})
    phase = phases.get(state)
    if phase is None:
        phase = phases[state] = compiled.protocol.state_def(state).phase or state
    return phase


class FactsTracker:
    """A course's report facts, kept up to date by :meth:`accepted` after each of its accepted
    events (``at`` as given in the event); :meth:`rows` gives them as stored."""

    __slots__ = ("_base", "_course", "_ends", "_final", "_last_at", "_measures", "_pct", "_phase",
                 "_phases", "_seq")

    def __init__(self, course: Course, opened_at: str) -> None:
        """Start with the just-opened ``course`` (``opened_at``: its ``course_opened``'s ``at``)."""
        self._course = course
        self._final = course.compiled.final_states
        self._phase = _PHASES.setdefault(course.compiled, {})  # state -> phase, per protocol
        self._phases: list[tuple[str, str]] = [(phase_of(course.compiled, course.state), opened_at)]
        self._ends: dict[str, float] = {}
        self._last_at = opened_at
        self._seq = course.seq
        self._base: Measure | None = None
        self._measures = -1
        self._pct: float | None = None

    def accepted(self, at: str) -> None:
        """Note the event the course just accepted (nothing when its seq did not move)."""
        course = self._course
        if course.seq == self._seq:
            return
        self._seq = course.seq
        self._last_at = at
        state = course.state
        phase = self._phase.get(state) or phase_of(course.compiled, state)
        last = self._phases[-1][0]
        if state in self._final:
            if last != END:
                self._phases.append((END, at))
            return
        if phase != last:
            self._phases.append((phase, at))
        pct = self._latest_pct()
        if pct is not None:
            self._ends[phase] = pct

    def _latest_pct(self) -> float | None:
        """The latest measure of the baseline instrument as percent of baseline (recomputed
        only when the baseline or the number of measures changed)."""
        facts = self._course.facts
        baseline, measures = facts.baseline, facts.measures
        if baseline is not self._base or len(measures) != self._measures:
            self._base, self._measures, self._pct = baseline, len(measures), None
            if baseline is not None and baseline.score:
                for m in reversed(measures):
                    if m.instrument == baseline.instrument:
                        self._pct = 100.0 * m.score / baseline.score
                        break
        return self._pct

    def phase_days(self) -> dict[str, float]:
        """Days in each phase the course entered (to its last event for the current one)."""
        days: dict[str, float] = {}
        stamps = [(p, parse_timestamp(at)) for p, at in self._phases]
        stamps.append(("", parse_timestamp(self._last_at)))
        for (phase, start), (_, end) in zip(stamps, stamps[1:], strict=False):
            if phase != END:
                days[phase] = days.get(phase, 0.0) + (end - start).total_seconds() / 86400
        return days

    def rows(self) -> ReportRows:
        """The course's report rows, as of its last accepted event."""
        course = self._course
        codes: dict[str, int] = {}
        for d in course.deviations:
            codes[d.code] = codes.get(d.code, 0) + 1
        baseline = course.facts.baseline
        outcome = course.outcome
        return ReportRows(course.course_id, course.seq, course.compiled.fingerprint,
                          baseline.instrument if baseline is not None else None,
                          outcome.status if outcome is not None else "none",
                          self.phase_days(), dict(self._ends), codes)


def replay_facts(events: list[Mapping[str, Any]], compiled: CompiledProtocol) -> ReportRows:
    """The report rows of the course whose stored events are ``events`` (bodies, in order),
    replayed on ``compiled`` (the protocol it is pinned to)."""
    course, _ = Course.try_open(events[0], compiled.registry, notify=False, compiled=compiled)
    if course is None:
        raise ValueError(f"the first event does not open a course on {compiled.fingerprint}")
    tracker = FactsTracker(course, events[0]["at"])
    for raw in events[1:]:
        course.apply(raw)
        tracker.accepted(raw["at"])
    return tracker.rows()


def stale_report_facts(store: Store, courses: Iterable[tuple[str, str]]) -> list[ReportRows]:
    """The report rows of ``courses`` (``(id, fingerprint)``), each replayed from its log (in
    the caller's read transaction, if any)."""
    out = []
    for course_id, fingerprint in courses:
        compiled = store.protocols.compiled(fingerprint, course_id)
        bodies = [json.loads(body) for body in event_bodies(store.recorder, course_id)]
        out.append(replay_facts(bodies, compiled))
    return out


def refresh_report_rows(store: Store, progress: Callable[[int], None] | None = None, *,
                        batch: int = 500) -> int:
    """Recompute and store the report rows of every course whose rows are missing or stale,
    ``batch`` courses per transaction; return how many were refreshed. ``progress(k)`` is
    called after each batch."""
    with store.recorder.read():
        stale = stale_courses(store.recorder)
    for i in range(0, len(stale), batch):
        chunk = stale[i:i + batch]
        with store.recorder.read():
            rows = stale_report_facts(store, chunk)
        write_report_rows(store.recorder, rows)
        if progress is not None:
            progress(len(chunk))
    return len(stale)
