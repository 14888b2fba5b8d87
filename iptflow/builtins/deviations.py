"""Deviation checks: never blocking, recorded for fidelity reports (SPEC §2 "Deviations").

A check is ``fn(course, event, **params) -> str | None``. It runs after an event has passed
every guard and *before* its effects, so it sees the course as it was and the event about to
be accepted; a message means the deviation is raised by this event. Protocol files list the
checks in the order deviations raised by one event are reported. Each is registered with the
event types it applies to (``register(name, fn, events=...)``, as any plugin can). The
annotations of the parameters say what a protocol may give them (validated like guards').
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

from iptflow.builtins.guards import Count, Days
from iptflow.protocol.instruments import reduction_pct

if TYPE_CHECKING:
    from iptflow.engine.course import Course

CheckFn = Callable[..., "str | None"]

Percent = Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)]

BUILTIN_CHECKS: dict[str, tuple[CheckFn, tuple[str, ...] | None]] = {}  # name -> (fn, events)


def check(name: str, events: tuple[str, ...] | None = None) -> Callable[[CheckFn], CheckFn]:
    """Add a built-in check. ``events``: the only event types it can raise a deviation on
    (the engine then does not call it for others); ``None`` means it sees every event."""

    def register(fn: CheckFn) -> CheckFn:
        BUILTIN_CHECKS[name] = (fn, events)
        return fn

    return register


@check("long_initial_phase", events=("middle_phase_started",))
def long_initial_phase(course: Course, event: Any, max_sessions: Count = 4) -> str | None:
    if event.type != "middle_phase_started":
        return None
    held = course.facts.sessions_held
    if held > max_sessions:
        return f"the middle phase started after {held} sessions (expected at most {max_sessions})"
    return None


_SPANS: dict[float, timedelta] = {}  # days -> timedelta: built once per parameter value


def _span(days: float) -> timedelta:
    span = _SPANS.get(days)
    if span is None:
        span = _SPANS[days] = timedelta(days=days)
    return span


@check("session_gap", events=("session_held",))
def session_gap(course: Course, event: Any, days: Days = 14) -> str | None:
    sessions = course.facts.sessions
    if (event.type != "session_held" or not sessions
            or course.state not in course.protocol.acute_states):
        return None
    gap = event.at - sessions[-1].at  # the last session's time (Facts.last_session_at)
    if gap > _span(days):
        shown = f"{gap.total_seconds() / 86400:.1f} days"
        if float(shown.split()[0]) <= days:  # rounding would hide the excess: say it exactly
            shown = str(gap)
        return f"{shown} since the previous session (more than {days:g} days)"
    return None


@check("missed_sessions", events=("session_missed",))
def missed_sessions(course: Course, event: Any, run: Count = 3) -> str | None:
    if event.type != "session_missed":
        return None
    if course.facts.missed_run + 1 == run:
        return f"{run} consecutive sessions missed"
    return None


@check("non_response", events=("session_held",))
def non_response(course: Course, event: Any, min_reduction_pct: Percent = 25) -> str | None:
    facts = course.facts
    review = course.protocol.review_session
    if event.type != "session_held" or len(facts.sessions) + 1 != review:  # sessions_held + 1
        return None
    baseline = facts.baseline
    if baseline is None or baseline.score == 0:
        return None
    latest = baseline
    for measure in reversed(facts.measures):
        if measure.instrument == baseline.instrument:
            latest = measure
            break
    reduction = reduction_pct(baseline.score, latest.score)
    if reduction < min_reduction_pct:
        return (
            f"at review session {review}, {baseline.instrument} is {latest.score} against a "
            f"baseline of {baseline.score}: {float(reduction):.1f}% improvement "
            f"(less than {min_reduction_pct:g}%)"
        )
    return None
