"""Deviation checks of protocol 2.0.0 (SPEC §2 "Deviations", Appendix A).

Like every check they run after the event passed its guards and before its effects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from iptflow.builtins.deviations import check
from iptflow.builtins.guards import RiskLevels, States

if TYPE_CHECKING:
    from iptflow.engine.course import Course


def _recurrence_running(course: Course, instrument: str, threshold: float) -> bool:
    """A run starts with a recurrence deviation and ends with a measure of the outcome
    instrument below the threshold, recorded in any state."""
    started = next((d.seq for d in reversed(course.deviations) if d.code == "recurrence"), None)
    if started is None:
        return False
    return not any(
        m.seq > started and m.instrument == instrument and m.score < threshold
        for m in course.facts.measures
    )


@check("recurrence", events=("measure_recorded",))
def recurrence(course: Course, event: Any, states: States) -> str | None:
    baseline = course.facts.baseline
    if course.state not in states or baseline is None or event.instrument != baseline.instrument:
        return None
    threshold = course.protocol.instruments[event.instrument].recurrence_at_least
    if threshold is None or event.score < threshold:
        return None
    if _recurrence_running(course, event.instrument, threshold):
        return None
    return (
        f"{event.instrument} is {event.score} in {course.state}: a recurrence "
        f"({threshold:g} or more)"
    )


@check("no_safety_plan", events=("risk_assessed",))
def no_safety_plan(course: Course, event: Any, levels: RiskLevels) -> str | None:
    if event.level in levels and not event.safety_plan and event.no_plan_reason:
        return f"{event.level} risk assessed without a safety plan: {event.no_plan_reason}"
    return None


@check("closed_with_open_review", events=("course_discontinued", "course_referred"))
def closed_with_open_review(course: Course, event: Any) -> str | None:
    if not course.facts.open_reviews:
        return None
    reviews = ", ".join(sorted(course.facts.open_reviews))
    return f"closed with the {reviews} review open, handed over to {event.handover}"


def technique_key(technique: str) -> str:
    """Lower-cased, with spaces and hyphens read as underscores."""
    return technique.lower().replace(" ", "_").replace("-", "_")


@check("excluded_technique", events=("session_held",))
def excluded_technique(course: Course, event: Any, techniques: list[str]) -> str | None:
    used = [t for t in event.techniques if technique_key(t) in techniques]
    if used:
        return f"a technique this protocol excludes was used: {', '.join(used)}"
    return None
