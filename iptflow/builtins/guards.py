"""Named requirements (guards). Protocol files refer to them by name with parameters.

A guard is ``fn(course, event, **params) -> str | None``: ``None`` when the requirement
holds, otherwise what is missing, in words a clinician understands. Guards only read;
they never change the course. Plugins add guards through the ``register_guards`` hook.

The annotations of the parameters say what a protocol may give them: ``iptflow check`` and
the compiler validate every requirement's ``params`` against them (strictly, ranges included:
:func:`iptflow.protocol.references.params_problem`), so a guard never sees ``count = "2"``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field

from iptflow.protocol.references import Refers, params_rule

if TYPE_CHECKING:
    from iptflow.engine.course import Course

GuardFn = Callable[..., "str | None"]

Count = Annotated[int, Field(ge=1)]
"""How many times something must have happened (at least once)."""
Sessions = Annotated[int, Field(ge=0)]
"""A number of sessions, zero included."""
Days = Annotated[float, Field(gt=0, le=36525, allow_inf_nan=False)]
"""A positive number of days, at most a century."""
Age = Annotated[int, Field(ge=0, le=150)]
State = Annotated[str, Refers("states")]
States = list[str]
"""States, some of which may be added by adaptations (not checked against the protocol's)."""
InstrumentName = Annotated[str, Refers("instruments")]
ReviewName = Annotated[str, Refers("reviews")]
EventTypeName = Annotated[str, Refers("event_types")]
ProblemArea = Annotated[str, Refers("problem_areas")]
RiskLevels = list[Literal["low", "moderate", "high"]]

BUILTIN_GUARDS: dict[str, GuardFn] = {}


def guard(name: str) -> Callable[[GuardFn], GuardFn]:
    def register(fn: GuardFn) -> GuardFn:
        BUILTIN_GUARDS[name] = fn
        return fn

    return register


def _human(name: str) -> str:
    return name.replace("_", " ")


@guard("diagnosis_indicated")
def diagnosis_indicated(course: Course, event: Any) -> str | None:
    diagnosis = course.facts.diagnosis
    indications = course.protocol.indications
    if diagnosis is None:
        return "no diagnosis has been confirmed"
    if diagnosis not in indications:
        return (
            f"the diagnosis {_human(diagnosis)} is not an indication of this protocol "
            f"(indicated: {', '.join(map(_human, indications))})"
        )
    return None


@guard("no_psychotic_features")
def no_psychotic_features(course: Course, event: Any) -> str | None:
    if course.facts.psychotic_features:
        return "the diagnosis has psychotic features, which IPT does not treat"
    return None


@guard("baseline_recorded")
def baseline_recorded(course: Course, event: Any) -> str | None:
    if course.facts.baseline is None:
        primaries = ", ".join(course.protocol.primary_instruments)
        return f"no baseline: record a primary measure ({primaries}) during assessment"
    return None


@guard("no_open_review")
def no_open_review(course: Course, event: Any) -> str | None:
    if not course.facts.open_reviews:
        return None
    open_reviews = sorted(course.facts.open_reviews)
    titles = [course.protocol.reviews[r].title if r in course.protocol.reviews else r
              for r in open_reviews]
    return f"the {' and the '.join(titles)} must be closed first"


@guard("review_open")
def review_open(course: Course, event: Any, review: ReviewName) -> str | None:
    if review not in course.facts.open_reviews:
        title = course.protocol.reviews[review].title if review in course.protocol.reviews else review
        return f"there is no open {title} to close"
    return None


@guard("event_recorded")
def event_recorded(
    course: Course, event: Any, event_type: EventTypeName, state: State | None = None,
    count: Count = 1
) -> str | None:
    done = course.facts.count(event_type, state)
    if done >= count:
        return None
    where = f" in {state}" if state else ""
    times = "" if count == 1 else f" {count} times (so far {done})"
    return f"{_human(event_type)} has not been recorded{where}{times}"


@guard("sessions_held_at_least")
def sessions_held_at_least(
    course: Course, event: Any, count: Count, state: State | None = None
) -> str | None:
    facts = course.facts
    held = facts.sessions_by_state.get(state, 0) if state else facts.sessions_held
    if held >= count:
        return None
    where = f" in {state}" if state else ""
    return f"at least {count} session(s) must be held{where} (held: {held})"


@guard("problem_area_chosen")
def problem_area_chosen(course: Course, event: Any) -> str | None:
    if not course.facts.problem_areas:
        return "no problem area has been selected"
    return None


@guard("contract_agreed")
def contract_agreed(course: Course, event: Any) -> str | None:
    if course.facts.planned_sessions is None:
        return "no formulation (treatment contract) has been agreed"
    if course.facts.records.get("formulation_due"):
        return "the problem areas were replaced: the formulation must be agreed again"
    return None


def _remaining(course: Course) -> int | None:
    planned = course.facts.planned_sessions
    return None if planned is None else planned - course.facts.acute_sessions


@guard("remaining_sessions_at_most")
def remaining_sessions_at_most(course: Course, event: Any, sessions: Sessions) -> str | None:
    remaining = _remaining(course)
    if remaining is None:
        return "no treatment contract: the number of remaining sessions is unknown"
    if remaining > sessions:
        return f"{remaining} contracted sessions remain; at most {sessions} may remain"
    return None


@guard("remaining_sessions_above")
def remaining_sessions_above(course: Course, event: Any, sessions: Sessions) -> str | None:
    remaining = _remaining(course)
    if remaining is not None and remaining <= sessions:
        return (
            f"only {remaining} contracted sessions remain: they belong to the termination "
            f"phase, which needs at least {sessions}"
        )
    return None


@guard("measure_in_state")
def measure_in_state(
    course: Course, event: Any, state: State,
    instrument: Annotated[str, Refers("instruments", also=("baseline",))] = "baseline",
) -> str | None:
    facts = course.facts
    if instrument == "baseline":
        if facts.baseline is None:
            return f"no baseline instrument to measure in {state}"
        instrument = facts.baseline.instrument
    if any(m.instrument == instrument and m.state == state for m in facts.measures):
        return None
    return f"no {instrument} measure has been recorded in {state}"


@guard("measure_recorded")
def measure_recorded(
    course: Course, event: Any, instrument: InstrumentName, count: Count = 1
) -> str | None:
    done = sum(1 for m in course.facts.measures if m.instrument == instrument)
    if done >= count:
        return None
    return f"no {instrument} measure has been recorded" if count == 1 else (
        f"{count} {instrument} measures are needed (recorded: {done})"
    )


@guard("session_number_next")
def session_number_next(course: Course, event: Any) -> str | None:
    number = event.number
    if number is None:
        return None
    expected = len(course.facts.sessions) + 1  # sessions_held + 1
    if number != expected:
        return f"session number {event.number} given, but this is session {expected}"
    return None


@guard("acute_session_within_contract")
def acute_session_within_contract(course: Course, event: Any) -> str | None:
    facts = course.facts
    planned = facts.planned_sessions
    cap = planned if planned is not None else course.protocol.session_range.max
    if facts.acute_sessions < cap:
        return None
    if planned is None:
        return f"the session range allows at most {cap} sessions before a contract"
    return f"all {cap} contracted sessions have been held"


@guard("maintenance_session_within_contract")
def maintenance_session_within_contract(
    course: Course, event: Any, state: State = "maintenance"
) -> str | None:
    contract = course.facts.maintenance
    if contract is None:
        return "no maintenance contract has been agreed"
    held = course.facts.sessions_by_state.get(state, 0)
    if held >= contract["planned_sessions"]:
        return f"all {contract['planned_sessions']} maintenance sessions have been held"
    return None


@guard("problem_area_available")
def problem_area_available(course: Course, event: Any) -> str | None:
    chosen = [a["area"] for a in course.facts.problem_areas]
    if event.area in chosen:
        return f"{_human(event.area)} has already been selected"
    limit = course.protocol.max_problem_areas
    if len(chosen) >= limit:
        return f"at most {limit} problem areas may be selected (chosen: {', '.join(chosen)})"
    return None


@guard("planned_sessions_in_range")
def planned_sessions_in_range(course: Course, event: Any) -> str | None:
    rng = course.protocol.session_range
    if not rng.min <= event.planned_sessions <= rng.max:
        return f"{event.planned_sessions} planned sessions is outside the range {rng.min}-{rng.max}"
    return None


@guard("planned_not_below_held")
def planned_not_below_held(course: Course, event: Any) -> str | None:
    held = course.facts.acute_sessions
    if event.planned_sessions < held:
        return f"{event.planned_sessions} planned sessions is fewer than the {held} already held"
    return None


def _ages_ordered(params: Mapping[str, Any]) -> str | None:
    if params["min"] > params["max"]:
        return f"the age range {params['min']}-{params['max']} is empty (min above max)"
    return None


@guard("patient_age_between")
@params_rule(_ages_ordered)
def patient_age_between(course: Course, event: Any, min: Age, max: Age) -> str | None:
    age = event.patient.age if event.patient is not None else None
    if age is None:
        return f"the patient's age is required (this protocol is for ages {min}-{max})"
    if not min <= age <= max:
        return f"the patient is {age}; this protocol is for ages {min}-{max}"
    return None


@guard("format_offered")
def format_offered(course: Course, event: Any) -> str | None:
    formats = course.protocol.formats
    if event.format not in formats:
        return (
            f"the {event.format} format is not offered by this protocol "
            f"(offered: {', '.join(formats)})"
        )
    return None


@guard("technique_not_used")
def technique_not_used(course: Course, event: Any, technique: str) -> str | None:
    if technique in event.techniques:
        return f"{technique} is not a technique of this protocol"
    return None
