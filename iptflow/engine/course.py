"""A course of therapy: one patient's treatment, driven only by events.

>>> from iptflow import Course
>>> course = Course.open({"type": "course_opened", "at": "2025-01-06T09:00:00Z",
...                       "course_id": "c-001", "protocol": "ipt-depression"})
>>> course.state
'assessment'
>>> result = course.apply({"type": "treatment_started", "at": "2025-01-06T10:00:00Z"})
>>> result.code, result.guards[:2]
('guard_failed', ('diagnosis_indicated', 'baseline_recorded'))

A rejected event changes nothing; an accepted one is recorded in ``history``. A course's
state is a pure function of its accepted events: ``Course.replay(history)`` rebuilds it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from iptflow.engine.applying import Applying, copy_event
from iptflow.engine.events import CourseOpened
from iptflow.engine.facts import Facts
from iptflow.engine.jsonio import plain_copy, value_problem
from iptflow.engine.machine import describe_validation_error
from iptflow.engine.registry import Registry, default_registry, known_names
from iptflow.engine.rejecting import (
    NoEventData,
    failures,
    guard_rejection,
    limit_rejection,
)
from iptflow.engine.results import Accepted, Deviation, Outcome, Rejection, Result
from iptflow.engine.snapshot import restore, snapshot_data
from iptflow.errors import EventRejected, PluginError, UnknownEventType
from iptflow.protocol.instruments import change_pct, outcome_status

if TYPE_CHECKING:
    from datetime import datetime

    from iptflow.engine.agenda import AgendaItem
    from iptflow.engine.machine import CompiledProtocol
    from iptflow.protocol.models import ResolvedProtocol


_validate_opened = CourseOpened.__pydantic_validator__.validate_python  # model_validate's core


@dataclass(frozen=True, slots=True)
class Replayed:
    """What :meth:`Course.replay_until_rejected` got to: see there."""

    course: Course | None
    result: Result
    seq: int

    @property
    def ok(self) -> bool:
        """Every event was accepted."""
        return self.course is not None and self.result.ok

    @property
    def rejection(self) -> Rejection | None:
        """The rejected event's rejection (``None`` when every event was accepted)."""
        return None if self.result.ok else self.result  # type: ignore[return-value]


class Course(Applying):
    """One course. Create it with :meth:`open`; change it only with :meth:`apply`."""

    __slots__ = ("_compiled", "state", "seq", "facts", "deviations", "history", "_notify",
                 "_rebuild", "_base")

    def __init__(self, compiled: CompiledProtocol, opened: CourseOpened) -> None:
        self._compiled = compiled
        self.state: str = compiled.protocol.initial_state
        self.seq = 1
        self.facts = Facts(
            course_id=opened.course_id,
            format=opened.format,
            patient_age=opened.patient.age if opened.patient else None,
            last_at=opened.at,
        )
        self.deviations: list[Deviation] = []
        self.history: list[dict[str, Any]] = []
        self._notify = compiled.registry.has_observers
        self._rebuild: Callable[[], Course] | None = None  # see keep_no_history
        self._base: dict[str, Any] | None = None  # see from_snapshot

    # -- opening -----------------------------------------------------------------------------
    @classmethod
    def try_open(
        cls,
        raw: Mapping[str, Any],
        registry: Registry | None = None,
        *,
        notify: bool = True,
        compiled: CompiledProtocol | None = None,
    ) -> tuple[Course | None, Result]:
        """Open a course from its ``course_opened`` event without raising on rejection.

        Returns ``(course, Accepted)`` or ``(None, Rejection)``. An unknown protocol or
        adaptation, or conflicting adaptations, raise :class:`iptflow.errors.ProtocolError`:
        the course cannot exist at all. ``compiled`` opens the course on a given compiled
        protocol instead of resolving the event's protocol and adaptations (the store uses
        it to load a course with the protocol it was opened under).
        """
        if registry is None:
            registry = default_registry()
        etype = raw.get("type") if isinstance(raw, Mapping) else None
        if not isinstance(raw, Mapping):
            return None, Rejection(
                "no_course", "the course was never opened: its first event must be a course_opened object"
            )
        if etype != "course_opened":
            return None, Rejection(
                "no_course",
                "the course was never opened: its first event must be course_opened",
                event_type=etype if isinstance(etype, str) else None,
            )
        owned = plain_copy(raw) if type(raw) is dict else None
        problem = value_problem(raw) if owned is None else None
        if problem is not None:
            return None, limit_rejection("course_opened", problem)
        try:
            opened = _validate_opened(raw if type(raw) is dict else dict(raw))
        except ValidationError as exc:
            return None, Rejection(
                "invalid_event", describe_validation_error(exc, "course_opened"), "course_opened"
            )
        if compiled is None:
            compiled = registry.compile(opened.protocol, opened.adaptations)
        course = cls(compiled, opened)
        course._notify = course._notify and notify
        failed = failures(compiled.open_requires, course, opened)
        if failed:
            return None, guard_rejection("course_opened", failed)
        course.history.append(owned if owned is not None else copy_event(raw))
        result = Accepted(1, "course_opened", course.state, None)
        if course._notify:
            registry.notify_event_accepted(course, opened, result)
        return course, result

    @classmethod
    def open(cls, raw: Mapping[str, Any], registry: Registry | None = None) -> Course:
        """Open a course; raise :class:`EventRejected` if ``course_opened`` is rejected."""
        course, result = cls.try_open(raw, registry)
        if course is None:
            raise EventRejected(result)
        return course

    @classmethod
    def replay_until_rejected(
        cls,
        events: Iterable[Mapping[str, Any]],
        registry: Registry | None = None,
        *,
        notify: bool = True,
        compiled: CompiledProtocol | None = None,
    ) -> Replayed:
        """Apply events in order until one is rejected: the one loop every replay goes through.

        Returns a :class:`Replayed`: the course and the result of the last event applied
        (``seq`` is its position, 1-based). When an event is rejected the replay stops there:
        ``result`` is that rejection and ``course`` is ``None`` if ``course_opened`` itself
        was rejected, else the course as it was before the rejected event. An empty
        ``events`` is the rejection ``no_course``. ``notify`` and ``compiled`` are as for
        :meth:`try_open`; observers stay off afterwards only when ``notify`` is false.
        """
        it = iter(events)
        first = next(it, None)
        if first is None:
            return Replayed(None, Rejection("no_course", "the course was never opened: no events"), 1)
        course, result = cls.try_open(first, registry, notify=notify, compiled=compiled)
        seq = 1
        if course is None:
            return Replayed(None, result, seq)
        for raw in it:
            seq += 1
            result = course.apply(raw)
            if not result.ok:
                break
        return Replayed(course, result, seq)

    @classmethod
    def replay(
        cls,
        events: Iterable[Mapping[str, Any]],
        registry: Registry | None = None,
        *,
        notify: bool = True,
        compiled: CompiledProtocol | None = None,
    ) -> Course:
        """Rebuild a course from accepted events; any rejection raises EventRejected.

        With ``notify=False`` observer hooks are not called while replaying (the events were
        seen before); the course returned calls them again for new events. ``compiled`` is
        passed to :meth:`try_open`.
        """
        replayed = cls.replay_until_rejected(events, registry, notify=notify, compiled=compiled)
        if replayed.course is None or not replayed.result.ok:
            assert isinstance(replayed.result, Rejection)
            raise EventRejected(replayed.result)
        course = replayed.course
        course._notify = course._compiled.registry.has_observers
        return course

    # -- reading -----------------------------------------------------------------------------
    @property
    def compiled(self) -> CompiledProtocol:
        return self._compiled

    @property
    def protocol(self) -> ResolvedProtocol:
        return self._compiled.protocol

    @property
    def course_id(self) -> str:
        return self.facts.course_id

    @property
    def is_closed(self) -> bool:
        return self.state in self._compiled.final_states

    @property
    def open_reviews(self) -> list[str]:
        return sorted(self.facts.open_reviews)

    @property
    def sessions_held(self) -> int:
        return self.facts.sessions_held

    @property
    def outcome(self) -> Outcome | None:
        baseline = self.facts.baseline
        if baseline is None:
            return None
        latest = None
        for measure in reversed(self.facts.measures):
            if measure.instrument == baseline.instrument:
                latest = measure
                break
        if latest is None or latest is baseline:
            return None
        instrument = self.protocol.instruments[baseline.instrument]
        return Outcome(
            instrument=baseline.instrument,
            baseline=baseline.score,
            latest=latest.score,
            change_pct=change_pct(baseline.score, latest.score),
            status=outcome_status(
                instrument, baseline.score, latest.score, self.facts.diagnosis, self._latest_score
            ),
        )

    def _latest_score(self, instrument: str) -> int | float | None:
        """The latest score of an instrument (outcome rules that look at a second one)."""
        for measure in reversed(self.facts.measures):
            if measure.instrument == instrument:
                return measure.score
        return None

    def allowed_events(self) -> list[str]:
        """Event types the current state allows (empty once the course is closed)."""
        return list(self._compiled.allowed_lists.get(self.state, ()))

    def unmet_requirements(self, event_type: str) -> list[tuple[str, str]]:
        """Requirements that would fail now for an event carrying no data of its own.

        Useful for "what is due next": ``[(name, message), ...]``; empty means the event is
        allowed now and would pass its guards (for events with data, e.g. session numbers,
        that data is checked too when the event arrives). An event the current state does not
        allow gives ``[("not_allowed", message)]`` (``[("course_closed", message)]`` once the
        course is closed), never an empty list. Raises
        :class:`~iptflow.errors.UnknownEventType` for a type the protocol does not know.
        """
        compiled = self._compiled
        if not isinstance(event_type, str) or event_type not in compiled.event_types:
            raise UnknownEventType(
                f"unknown event type {event_type!r} for protocol {self.protocol.id}"
                + known_names(event_type, compiled.event_types)
            )
        if self.state in compiled.final_states:
            return [("course_closed", self._closed_message())]
        route = compiled.route(self.state, event_type, self.facts)
        if route is None:
            return [("not_allowed", self._not_allowed_message(event_type))]
        out = []
        for req in route.requires:
            try:
                msg = req.failure(self, NoEventData(event_type))
            except (AttributeError, PluginError):
                continue  # the requirement reads event data we do not have
            if msg:
                out.append((req.name, msg))
        return out

    def _closed_message(self) -> str:
        return f"the course is {self.state.replace('_', ' ')} and accepts no more events"

    def _not_allowed_message(self, etype: str) -> str:
        """Why the current state takes no ``etype`` (not allowed, or no route's ``when`` fits)."""
        compiled = self._compiled
        routes = compiled.allowed[self.state].get(etype)
        if routes is None:
            if etype == "course_opened":
                return "the course is already open: course_opened must be its first event"
            return (f"{etype} is not allowed in {self.state}; allowed there: "
                    + ", ".join(compiled.allowed_lists[self.state]))
        conditions = "; ".join(", ".join(f"{k} {v}" for k, v in r.when) for r in routes)
        return f"{etype} is only allowed in {self.state} for courses with {conditions}"

    def agenda(self, as_of: datetime | str) -> list[AgendaItem]:
        """What the course needs next as of ``as_of`` (docs/worklist.md): urgent items first,
        then due, then info, by due time. Empty for a closed course.

        ``as_of`` is a timezone-aware datetime or an RFC 3339 string (the engine never reads
        the clock); one earlier than the last accepted event raises
        :class:`~iptflow.errors.InvalidAsOf`.
        """
        return self._compiled.registry.agenda(self, as_of)

    def snapshot(self) -> dict[str, Any]:
        """The full observable state, JSON-ready (equal snapshots = equal courses)."""
        outcome = self.outcome
        return {
            "course_id": self.course_id,
            "protocol": self.protocol.summary(),
            "state": self.state,
            "seq": self.seq,
            "facts": self.facts.to_dict(),
            "deviations": [d.to_dict() for d in self.deviations],
            "outcome": outcome.to_dict() if outcome else None,
        }

    def to_snapshot(self) -> dict[str, Any]:
        """What :meth:`from_snapshot` needs to continue this course without replay, JSON-ready
        (:mod:`iptflow.engine.snapshot`)."""
        return snapshot_data(self)

    @classmethod
    def from_snapshot(cls, compiled: CompiledProtocol, data: Any,
                      history: list[dict[str, Any]] | None = None) -> Course:
        """The course a :meth:`to_snapshot` mapping describes, on ``compiled``, without replay;
        :class:`~iptflow.engine.snapshot.InvalidSnapshot` if ``data`` is not one. ``history``:
        its accepted events up to the snapshot; without it ``history`` holds only the events
        applied from now on, and a failed plugin call is undone from ``data`` and those."""
        course = cls.__new__(cls)
        restore(course, compiled, data)
        course._base = None if history is not None else data
        course.history = history if history is not None else []
        return course

    def __repr__(self) -> str:
        return f"<Course {self.course_id!r} {self.protocol.id} state={self.state} seq={self.seq}>"
