"""The base protocol's events (SPEC §1) beyond ``course_opened``: their models, the
protocol-dependent checks (failures are ``invalid_event``) and the effects of accepted events.

The core plugin registers them through the ``register_events`` hook (``BASE_EVENT_TYPES``),
like any plugin registers its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, StrictBool, StrictInt, StrictStr, model_validator

from iptflow.engine.events import CourseOpened, Event, EventType, NonEmptyStr
from iptflow.engine.facts import Measure, Session

if TYPE_CHECKING:
    from iptflow.engine.course import Course


class MeasureRecorded(Event):
    type: Literal["measure_recorded"]
    instrument: NonEmptyStr
    score: StrictInt | Annotated[float, Field(allow_inf_nan=False)]
    items: list[StrictInt] | None = None


class RiskFlagged(Event):
    type: Literal["risk_flagged"]
    reason: StrictStr


class RiskAssessed(Event):
    type: Literal["risk_assessed"]
    level: Literal["low", "moderate", "high"]
    safety_plan: StrictBool


class DiagnosisConfirmed(Event):
    type: Literal["diagnosis_confirmed"]
    diagnosis: NonEmptyStr
    psychotic_features: StrictBool = False


class TreatmentStarted(Event):
    type: Literal["treatment_started"]


class SessionHeld(Event):
    type: Literal["session_held"]
    number: StrictInt | None = None
    techniques: list[StrictStr] = Field(default_factory=list)


class SessionMissed(Event):
    type: Literal["session_missed"]


class SickRoleGiven(Event):
    type: Literal["sick_role_given"]


class InterpersonalInventoryCompleted(Event):
    type: Literal["interpersonal_inventory_completed"]


class ProblemAreaSelected(Event):
    type: Literal["problem_area_selected"]
    area: NonEmptyStr
    stage: Literal["renegotiation", "impasse", "dissolution"] | None = None

    @model_validator(mode="after")
    def _stage(self) -> ProblemAreaSelected:
        if self.area == "role_dispute" and self.stage is None:
            raise ValueError("stage is required for role_dispute (renegotiation, impasse, dissolution)")
        if self.area != "role_dispute" and self.stage is not None:
            raise ValueError(f"stage is only allowed for role_dispute, not for {self.area}")
        return self


class FormulationAgreed(Event):
    type: Literal["formulation_agreed"]
    planned_sessions: StrictInt


class MiddlePhaseStarted(Event):
    type: Literal["middle_phase_started"]


class TerminationStarted(Event):
    type: Literal["termination_started"]


class ProgressReviewed(Event):
    type: Literal["progress_reviewed"]


class RelapsePlanRecorded(Event):
    type: Literal["relapse_plan_recorded"]
    warning_signs: Annotated[list[NonEmptyStr], Field(min_length=1)]


class MaintenanceStarted(Event):
    type: Literal["maintenance_started"]
    frequency: Literal["weekly", "biweekly", "monthly"]
    planned_sessions: Annotated[StrictInt, Field(ge=1)]


class CourseCompleted(Event):
    type: Literal["course_completed"]


class CourseDiscontinued(Event):
    type: Literal["course_discontinued"]
    reason: NonEmptyStr


class CourseReferred(Event):
    type: Literal["course_referred"]
    reason: NonEmptyStr
    to: StrictStr | None = None


# --- protocol-dependent checks (failures are invalid_event) -----------------------------


def check_measure(course: Course, event: MeasureRecorded) -> str | None:
    instrument = course.protocol.instruments.get(event.instrument)
    if instrument is None:
        known = ", ".join(sorted(course.protocol.instruments))
        return f"unknown instrument {event.instrument!r} (this course knows: {known})"
    problem = instrument.check(event.score, event.items)
    return f"{event.instrument}: {problem}" if problem else None


def check_problem_area(course: Course, event: ProblemAreaSelected) -> str | None:
    if event.area not in course.protocol.problem_areas:
        known = ", ".join(course.protocol.problem_areas)
        return f"unknown problem area {event.area!r} (this course knows: {known})"
    return None


# --- effects of accepted events ----------------------------------------------------------


def measure_of(course: Course, event: MeasureRecorded, **extra: Any) -> Measure:
    """The measure an accepted ``measure_recorded`` event records (``extra``: a later
    version's fields, e.g. ``item9``)."""
    return Measure(
        instrument=event.instrument,
        score=event.score,
        items=list(event.items) if event.items is not None else None,
        state=course.state,
        at=event.at,
        seq=course.seq,
        **extra,
    )


def record_measure(course: Course, event: MeasureRecorded) -> None:
    facts = course.facts
    measure = measure_of(course, event)
    facts.measures.append(measure)
    protocol = course.protocol
    if (
        facts.baseline is None
        and course.state == protocol.initial_state
        and event.instrument in protocol.primary_instruments
    ):
        facts.baseline = measure
    for trigger in protocol.instruments[event.instrument].opens_reviews:
        if trigger.fires(event.score, event.items):
            facts.open_reviews.add(trigger.review)


def record_diagnosis(course: Course, event: DiagnosisConfirmed) -> None:
    course.facts.diagnosis = event.diagnosis
    course.facts.psychotic_features = event.psychotic_features


def record_session(course: Course, event: SessionHeld) -> None:
    facts = course.facts
    state = course.state
    sessions = facts.sessions
    # number, state, at, techniques, seq (positional: one session per session_held)
    sessions.append(Session(len(sessions) + 1, state, event.at, list(event.techniques), course.seq))
    by_state = facts.sessions_by_state
    by_state[state] = by_state.get(state, 0) + 1
    if state in course.protocol.acute_states:
        facts.acute_sessions += 1
    facts.missed_run = 0


def record_missed(course: Course, event: SessionMissed) -> None:
    course.facts.missed_sessions += 1
    course.facts.missed_run += 1


def record_problem_area(course: Course, event: ProblemAreaSelected) -> None:
    entry = {"area": event.area}
    if event.stage is not None:
        entry["stage"] = event.stage
    course.facts.problem_areas.append(entry)


def record_formulation(course: Course, event: FormulationAgreed) -> None:
    course.facts.planned_sessions = event.planned_sessions
    course.facts.records.pop("formulation_due", None)  # set when problem areas are replaced


def record_relapse_plan(course: Course, event: RelapsePlanRecorded) -> None:
    course.facts.records["warning_signs"] = list(event.warning_signs)


def record_maintenance(course: Course, event: MaintenanceStarted) -> None:
    course.facts.maintenance = {
        "frequency": event.frequency,
        "planned_sessions": event.planned_sessions,
    }


def record_risk_assessment(course: Course, event: RiskAssessed) -> None:
    course.facts.records["risk_assessment"] = {
        "level": event.level,
        "safety_plan": event.safety_plan,
    }


def record_ending(course: Course, event: CourseDiscontinued | CourseReferred) -> None:
    ending: dict[str, Any] = {"type": event.type, "reason": event.reason}
    if isinstance(event, CourseReferred) and event.to is not None:
        ending["to"] = event.to
    course.facts.records["ending"] = ending


BASE_EVENT_TYPES: tuple[EventType, ...] = (
    EventType("course_opened", CourseOpened, description="opens a course"),
    EventType("measure_recorded", MeasureRecorded, check_measure, record_measure,
              "records a rating-scale score"),
    EventType("risk_flagged", RiskFlagged, description="opens the risk review"),
    EventType("risk_assessed", RiskAssessed, effect=record_risk_assessment,
              description="closes the risk review"),
    EventType("diagnosis_confirmed", DiagnosisConfirmed, effect=record_diagnosis,
              description="records the diagnosis"),
    EventType("treatment_started", TreatmentStarted, description="assessment -> initial"),
    EventType("session_held", SessionHeld, effect=record_session, description="counts a session"),
    EventType("session_missed", SessionMissed, effect=record_missed,
              description="counts a missed session"),
    EventType("sick_role_given", SickRoleGiven, description="initial-phase task"),
    EventType("interpersonal_inventory_completed", InterpersonalInventoryCompleted,
              description="initial-phase task"),
    EventType("problem_area_selected", ProblemAreaSelected, check_problem_area,
              record_problem_area, "chooses a problem area"),
    EventType("formulation_agreed", FormulationAgreed, effect=record_formulation,
              description="the treatment contract"),
    EventType("middle_phase_started", MiddlePhaseStarted, description="initial -> middle"),
    EventType("termination_started", TerminationStarted, description="middle -> termination"),
    EventType("progress_reviewed", ProgressReviewed, description="termination task"),
    EventType("relapse_plan_recorded", RelapsePlanRecorded, effect=record_relapse_plan,
              description="termination task"),
    EventType("maintenance_started", MaintenanceStarted, effect=record_maintenance,
              description="termination -> maintenance, a new contract"),
    EventType("course_completed", CourseCompleted, description="-> completed"),
    EventType("course_discontinued", CourseDiscontinued, effect=record_ending,
              description="-> discontinued"),
    EventType("course_referred", CourseReferred, effect=record_ending,
              description="-> referred_out"),
)
