"""Guards of protocol 2.0.0 (SPEC §2, Appendix A): the safety rules 1.0.0 did not have.

Each returns ``None`` when its requirement holds, otherwise what is missing in a clinician's
words. They are registered with the other built-in guards (``BUILTIN_GUARDS``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from iptflow.builtins.guards import Days, ProblemArea, RiskLevels, State, guard

if TYPE_CHECKING:
    from iptflow.engine.course import Course
    from iptflow.engine.facts import Measure


def _human(name: str) -> str:
    return name.replace("_", " ")


def outcome_instruments(course: Course) -> list[str]:
    """Instruments whose measures count as a measure of the outcome instrument."""
    baseline = course.facts.baseline
    names = [baseline.instrument] if baseline is not None else []
    names += [i for i in course.protocol.outcome_measure_also if i not in names]
    return names


def latest_outcome_measure(course: Course) -> Measure | None:
    baseline = course.facts.baseline
    if baseline is None:
        return None
    for measure in reversed(course.facts.measures):
        if measure.instrument == baseline.instrument:
            return measure
    return None


def item9_known(measure: Measure) -> bool:
    return measure.items is not None or measure.item9 is not None or measure.score == 0


@guard("suicide_screen")
def suicide_screen(course: Course, event: Any, state: State = "assessment") -> str | None:
    facts = course.facts
    instruments = course.protocol.instruments
    for m in facts.measures:
        if m.state == state and instruments[m.instrument].item9 and item9_known(m):
            return None
    if facts.count("risk_assessed", state):
        return None
    screens = sorted(name for name, inst in instruments.items() if inst.item9)
    return (
        f"no suicide screen in {state}: record a {' or '.join(screens)} with item 9 "
        "(items or item9), or a risk assessment"
    )


@guard("safety_plan_or_reason")
def safety_plan_or_reason(course: Course, event: Any, levels: RiskLevels) -> str | None:
    if event.level not in levels or event.safety_plan or event.no_plan_reason:
        return None
    return (
        f"a {event.level} risk needs a safety plan, or the reason there is none "
        "(no_plan_reason), before the review can close"
    )


@guard("handover_of_open_review")
def handover_of_open_review(course: Course, event: Any) -> str | None:
    if not course.facts.open_reviews or event.handover:
        return None
    titles = [
        course.protocol.reviews[r].title if r in course.protocol.reviews else r
        for r in sorted(course.facts.open_reviews)
    ]
    return (
        f"the {' and the '.join(titles)} is still open: say who now holds it (handover) "
        "before the course is closed"
    )


@guard("problem_area_available_or_replacing")
def problem_area_available_or_replacing(course: Course, event: Any) -> str | None:
    if event.replace:
        return None
    chosen = [a["area"] for a in course.facts.problem_areas]
    if event.area in chosen:
        return f"{_human(event.area)} has already been selected"
    limit = course.protocol.max_problem_areas
    if len(chosen) >= limit:
        return (
            f"at most {limit} problem areas may be selected (chosen: {', '.join(chosen)}); "
            "to change the focus, select with replace"
        )
    return None


@guard("problem_area_alone")
def problem_area_alone(course: Course, event: Any, area: ProblemArea) -> str | None:
    if event.replace:
        return None
    others = [a["area"] for a in course.facts.problem_areas if a["area"] != event.area]
    if event.area == area and others:
        return (
            f"{_human(area)} is the focus only when no life event fits; it cannot be combined "
            f"with {', '.join(map(_human, others))}"
        )
    if event.area != area and area in others:
        return (
            f"{_human(area)} has been selected, which is the focus only when no life event "
            f"fits: it cannot be combined with {_human(event.area)} (select with replace to "
            "change the focus)"
        )
    return None


@guard("outcome_measure_in_state")
def outcome_measure_in_state(
    course: Course, event: Any, state: State, within_days: Days | None = None
) -> str | None:
    names = outcome_instruments(course)
    if not names:
        return f"no outcome instrument (no baseline) to measure in {state}"
    now = getattr(event, "at", None) or course.facts.last_at  # "what is due" asks without an event
    # the age of a measure, not now minus N days: that date can fall before year 1
    window = timedelta(days=within_days) if within_days is not None and now else None
    for m in course.facts.measures:
        if m.state == state and m.instrument in names and (window is None or now - m.at <= window):
            return None
    which = " or ".join(names)
    if within_days is None:
        return f"no {which} measure has been recorded in {state}"
    return f"no {which} measure has been recorded in {state} in the last {within_days:g} days"


@guard("no_recurrence_in_progress")
def no_recurrence_in_progress(course: Course, event: Any) -> str | None:
    latest = latest_outcome_measure(course)
    if latest is None:
        return None
    threshold = course.protocol.instruments[latest.instrument].recurrence_at_least
    if threshold is None or latest.score < threshold:
        return None
    return (
        f"a recurrence is in progress: the latest {latest.instrument} is {latest.score} "
        f"(recurrence at {threshold:g} or more)"
    )
