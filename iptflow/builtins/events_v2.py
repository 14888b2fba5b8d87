"""Event models of protocol 2.0.0 (SPEC §1): the new event and the new optional fields.

A protocol chooses these revisions in its ``event_revisions`` table; protocol 1.0.0 does not,
so under 1.0.0 ``item9``, ``no_plan_reason``, ``replace`` and ``handover`` stay unknown fields
(``invalid_event``) exactly as before. Each revision keeps every field of revision 1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, StrictBool, StrictInt, StrictStr

from iptflow.builtins.events import (
    CourseDiscontinued,
    CourseReferred,
    MeasureRecorded,
    ProblemAreaSelected,
    RiskAssessed,
    check_measure,
    check_problem_area,
    measure_of,
    record_ending,
    record_risk_assessment,
)
from iptflow.engine.events import Event, EventType

if TYPE_CHECKING:
    from iptflow.engine.course import Course


class MeasureRecorded2(MeasureRecorded):
    """A measure; ``item9`` carries the PHQ-9 / PHQ-A suicide item alone (for totals)."""

    item9: Annotated[StrictInt, Field(ge=0, le=3)] | None = None


class RiskAssessed2(RiskAssessed):
    """A risk assessment; ``no_plan_reason`` says why a moderate or high risk has no plan."""

    no_plan_reason: StrictStr | None = None


class ProblemAreaSelected2(ProblemAreaSelected):
    """A problem area; ``replace`` replaces every area chosen so far."""

    replace: StrictBool | None = None


class CourseDiscontinued2(CourseDiscontinued):
    """Discontinuation; ``handover`` names who now holds an open review."""

    handover: StrictStr | None = None


class CourseReferred2(CourseReferred):
    """Referral; ``handover`` names who now holds an open review."""

    handover: StrictStr | None = None


class EndingDiscussed(Event):
    """The patient's feelings about ending treatment were discussed."""

    type: Literal["ending_discussed"]


def check_measure_2(course: Course, event: MeasureRecorded2) -> str | None:
    problem = check_measure(course, event)
    if problem or event.item9 is None:
        return problem
    instrument = course.protocol.instruments[event.instrument]
    item_problem = instrument.check_item9(event.score, event.items, event.item9)
    return f"{event.instrument}: {item_problem}" if item_problem else None


def choose_baseline(course: Course) -> None:
    """SPEC §2 (2.0): the outcome instrument is the first in the outcome order with a measure
    in the initial state; the baseline is its first measure there."""
    protocol = course.protocol
    early = [m for m in course.facts.measures if m.state == protocol.initial_state]
    for instrument in protocol.outcome_order:
        first = next((m for m in early if m.instrument == instrument), None)
        if first is not None:
            course.facts.baseline = first
            return


def record_measure_2(course: Course, event: MeasureRecorded2) -> None:
    facts = course.facts
    protocol = course.protocol
    measure = measure_of(course, event, item9=event.item9)
    facts.measures.append(measure)
    if course.state == protocol.initial_state:
        if protocol.outcome_order:
            choose_baseline(course)
        elif facts.baseline is None and event.instrument in protocol.primary_instruments:
            facts.baseline = measure
    for trigger in protocol.instruments[event.instrument].opens_reviews:
        if trigger.fires(event.score, event.items, event.item9):
            facts.open_reviews.add(trigger.review)


def record_problem_area_2(course: Course, event: ProblemAreaSelected2) -> None:
    entry = {"area": event.area}
    if event.stage is not None:
        entry["stage"] = event.stage
    facts = course.facts
    if event.replace:
        facts.problem_areas = [entry]
        if facts.planned_sessions is not None:  # the contract stays until agreed again
            facts.records["formulation_due"] = True
    else:
        facts.problem_areas.append(entry)


def record_risk_assessment_2(course: Course, event: RiskAssessed2) -> None:
    record_risk_assessment(course, event)
    if event.no_plan_reason is not None:
        course.facts.records["risk_assessment"]["no_plan_reason"] = event.no_plan_reason


def record_ending_2(course: Course, event: CourseDiscontinued2 | CourseReferred2) -> None:
    record_ending(course, event)
    if event.handover is not None:
        course.facts.records["ending"]["handover"] = event.handover


EVENT_TYPES_2: tuple[EventType, ...] = (
    EventType("measure_recorded", MeasureRecorded2, check_measure_2, record_measure_2,
              "records a rating-scale score (item9: the suicide item alone)", revision=2),
    EventType("risk_assessed", RiskAssessed2, effect=record_risk_assessment_2,
              description="closes the risk review (a plan, or the reason there is none)",
              revision=2),
    EventType("problem_area_selected", ProblemAreaSelected2, check_problem_area,
              record_problem_area_2, "chooses a problem area (replace: instead of those chosen)",
              revision=2),
    EventType("course_discontinued", CourseDiscontinued2, effect=record_ending_2,
              description="-> discontinued (handover: who holds an open review)", revision=2),
    EventType("course_referred", CourseReferred2, effect=record_ending_2,
              description="-> referred_out (handover: who holds an open review)", revision=2),
    EventType("ending_discussed", EndingDiscussed,
              description="termination or maintenance task: feelings about ending discussed"),
)
