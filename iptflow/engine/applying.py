"""Applying one event to a course: the checks in SPEC order, then what an accepted event does.

:class:`Applying` is the part of :class:`~iptflow.engine.course.Course` that changes it
(``apply``, ``keep_no_history`` and the undo after a plugin failed). It is the engine's hot
path: what a compiled protocol fixes per event type is looked up once per event
(:class:`~iptflow.engine.machine.EventPlan`), a route that needs no course is found in one
dict (``CompiledProtocol.direct``), and the copy of the event kept in ``history`` comes from
the same pass that checks the JSON limits (:func:`~iptflow.engine.jsonio.plain_copy`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from iptflow.engine.jsonio import plain_copy, value_problem
from iptflow.engine.machine import EventPlan, Route, describe_validation_error
from iptflow.engine.rejecting import failures, guard_rejection, limit_rejection, plugin_error
from iptflow.engine.results import Accepted, Deviation, Rejection
from iptflow.errors import IptflowError, PluginError

if TYPE_CHECKING:
    from iptflow.engine.course import Course
    from iptflow.engine.facts import Facts
    from iptflow.engine.machine import BoundCheck, CompiledProtocol

__all__ = ["Applying", "copy_event"]

_new_accepted = tuple.__new__  # Accepted is a tuple: built without a Python __new__ per event
_NO_REVIEWS: frozenset[str] = frozenset()
_NO_ROUTES: dict[str, Route] = {}


def copy_event(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of an event deep enough that the caller's later changes cannot reach us."""
    out = dict(raw)
    for k, v in out.items():
        t = type(v)
        if t is str or t is int:  # the common, immutable case first
            continue
        if isinstance(v, list):
            out[k] = list(v)
        elif isinstance(v, dict):
            out[k] = dict(v)
    return out


def _deviations(
    course: Course, event: Any, seq: int, etype: str, checks: tuple[BoundCheck, ...]
) -> tuple[Deviation, ...]:
    """The deviations ``event`` raises (the checks see the course before its effects)."""
    raised = []
    for chk in checks:
        try:
            msg = chk.fn(course, event, **chk.params) if chk.params else chk.fn(course, event)
        except Exception as exc:
            raise PluginError(
                f"plugin {chk.plugin}: deviation check {chk.code!r} raised "
                f"{type(exc).__name__}: {exc}",
                plugin=chk.plugin,
                hook="register_deviation_checks",
            ) from exc
        if msg:
            raised.append(Deviation(chk.code, msg, seq, etype, event.at))
    return tuple(raised)


class Applying:
    """What changes a course (mixed into :class:`~iptflow.engine.course.Course`)."""

    __slots__ = ()

    if TYPE_CHECKING:
        _compiled: CompiledProtocol
        state: str
        seq: int
        facts: Facts
        deviations: list[Deviation]
        history: Any
        _notify: bool
        _rebuild: Callable[[], Course] | None
        _base: dict[str, Any] | None

        def _closed_message(self) -> str: ...
        def _not_allowed_message(self, etype: str) -> str: ...

    def apply(self, raw: Mapping[str, Any]) -> Accepted | Rejection:
        """Apply one event. Returns :class:`Accepted` or a :class:`Rejection` (nothing changed).

        Checks run in SPEC order: ``course_closed``, ``invalid_event``, ``not_allowed``,
        ``out_of_order``, ``guard_failed``.
        """
        compiled = self._compiled
        is_dict = type(raw) is dict
        etype = raw.get("type") if is_dict or isinstance(raw, Mapping) else None
        etype = etype if type(etype) is str or isinstance(etype, str) else None
        if self.state in compiled.final_states:
            return Rejection("course_closed", self._closed_message(), etype)
        owned = plain_copy(raw) if is_dict else None  # type: ignore[arg-type]
        if owned is None:
            problem = value_problem(raw) if isinstance(raw, Mapping) else None
            if problem is not None:  # too deep, a number too large, a lone surrogate
                return limit_rejection(etype, problem)
        plan = compiled.plans.get(etype) if is_dict else None  # type: ignore[arg-type]
        if plan is None:  # not a dict, or no type this protocol knows: parse says what is wrong
            return Rejection("invalid_event", compiled.parse(raw), etype)  # type: ignore[arg-type]
        try:
            event = compiled.validate(raw)
        except ValidationError as exc:
            return Rejection("invalid_event", describe_validation_error(exc, etype), etype)
        assert etype is not None
        if plan.check is not None:
            try:
                problem = plan.check(self, event)
            except Exception as exc:  # a plugin's check failed: name it; nothing has changed
                raise plugin_error(compiled, etype, "check", exc) from exc
            if problem:
                return Rejection("invalid_event", problem, etype)
        route = (compiled.direct.get(self.state, _NO_ROUTES).get(etype)
                 or compiled.route(self.state, etype, self.facts))
        if route is None:
            return Rejection("not_allowed", self._not_allowed_message(etype), etype)
        last_at = self.facts.last_at
        if last_at is not None and event.at < last_at:
            return Rejection(
                "out_of_order",
                f"{etype} at {raw['at']} is earlier than the last accepted event "
                f"({last_at.isoformat()})",
                etype,
            )
        if route.requires:
            failed = failures(route.requires, self, event)  # type: ignore[arg-type]
            if failed:
                return guard_rejection(etype, failed)
        accepted_events = len(self.history)
        try:
            return self._accept(raw, owned, event, etype, plan, route)
        except Exception as exc:
            del self.history[accepted_events:]  # an observer may fail after the event was logged
            self._restore()
            if isinstance(exc, IptflowError):
                raise
            raise plugin_error(compiled, etype, "effect", exc) from exc

    def _accept(self, raw: Mapping[str, Any], owned: dict[str, Any] | None, event: Any,
                etype: str, plan: EventPlan, route: Route) -> Accepted:
        compiled = self._compiled
        facts = self.facts
        previous = self.state
        seq = self.seq + 1
        raised = _deviations(self, event, seq, etype, plan.checks) if plan.checks else ()  # type: ignore[arg-type]
        self.seq = seq
        before = frozenset(facts.open_reviews) if facts.open_reviews else _NO_REVIEWS
        if plan.effect is not None:
            plan.effect(self, event)  # type: ignore[arg-type]
        key = (etype, previous)
        counts = facts.event_counts
        counts[key] = counts.get(key, 0) + 1
        if plan.task:
            facts.tasks.add(etype)
        if plan.reviews:
            for review in plan.opens:
                facts.open_reviews.add(review)
            for review in plan.closes:
                facts.open_reviews.discard(review)
        if before != facts.open_reviews:
            opened = tuple(sorted(facts.open_reviews - before))
            closed = tuple(sorted(before - facts.open_reviews))
        else:
            opened = closed = ()
        facts.last_at = event.at
        if raised:
            self.deviations.extend(raised)
        if route.dest is not None:
            compiled.step(self, etype, route)  # type: ignore[arg-type]
            if self._notify:
                compiled.registry.notify_state_changed(self, previous, self.state, etype)  # type: ignore[arg-type]
        if self._rebuild is None:
            self.history.append(owned if owned is not None else copy_event(raw))
        result: Accepted = _new_accepted(
            Accepted, (seq, etype, self.state, previous, raised, opened, closed)
        )
        if self._notify:
            compiled.registry.notify_event_accepted(self, event, result)  # type: ignore[arg-type]
        return result

    def keep_no_history(self, rebuild: Callable[[], Course]) -> None:
        """Keep no accepted events from now on (a long replay that can read them again):
        ``history`` is emptied and stays empty. Undoing an event a plugin failed on then
        takes ``rebuild()``, the course as it was before that event, instead of replaying
        ``history``."""
        self.history.clear()
        self._rebuild = rebuild

    def _restore(self) -> None:
        """Undo a partly applied event by rebuilding from the accepted history."""
        cls: Any = type(self)
        if self._rebuild is not None:
            fresh: Course | None = self._rebuild()
        elif self._base is not None:  # restored from a snapshot: it and the events since
            fresh = cls.from_snapshot(self._compiled, self._base)
            fresh._notify = False
            for raw in self.history:
                fresh.apply(raw)
        else:
            fresh = cls.replay(
                self.history, self._compiled.registry, notify=False, compiled=self._compiled
            ) if self.history else None
        if fresh is None:  # pragma: no cover - a course always has its opening event
            return
        self._compiled = fresh._compiled
        self.state = fresh.state
        self.seq = fresh.seq
        self.facts = fresh.facts
        self.deviations = fresh.deviations
        self.history = fresh.history
