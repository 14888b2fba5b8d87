"""SPEC §1 (events) and §5 (rejections) for the base protocol."""

from __future__ import annotations

from datetime import timedelta

import pytest
from spec_support import T0, Driver, iso, opened, phq9

from iptflow import Course, EventRejected
from iptflow.engine.results import Rejection

ANY_ACTIVE = {"measure_recorded", "risk_flagged", "risk_assessed", "course_discontinued", "course_referred"}
SESSIONS = {"session_held", "session_missed"}
ALLOWED = {
    "assessment": ANY_ACTIVE | {"diagnosis_confirmed", "treatment_started"},
    "initial": ANY_ACTIVE | SESSIONS | {
        "sick_role_given", "interpersonal_inventory_completed", "problem_area_selected",
        "formulation_agreed", "middle_phase_started",
    },
    "middle": ANY_ACTIVE | SESSIONS | {"termination_started"},
    "termination": ANY_ACTIVE | SESSIONS | {
        "progress_reviewed", "relapse_plan_recorded", "maintenance_started", "course_completed",
    },
    "maintenance": ANY_ACTIVE | SESSIONS | {"course_completed"},
}

# a valid payload for every event type of the base vocabulary (besides type and at)
PAYLOADS: dict[str, dict] = {
    "measure_recorded": phq9(10),
    "risk_flagged": {"reason": "passive death wish"},
    "risk_assessed": {"level": "low", "safety_plan": True},
    "diagnosis_confirmed": {"diagnosis": "major_depressive_disorder"},
    "treatment_started": {},
    "session_held": {},
    "session_missed": {},
    "sick_role_given": {},
    "interpersonal_inventory_completed": {},
    "problem_area_selected": {"area": "grief"},
    "formulation_agreed": {"planned_sessions": 12},
    "middle_phase_started": {},
    "termination_started": {},
    "progress_reviewed": {},
    "relapse_plan_recorded": {"warning_signs": ["early waking"]},
    "maintenance_started": {"frequency": "weekly", "planned_sessions": 4},
    "course_completed": {},
    "course_discontinued": {"reason": "moved away"},
    "course_referred": {"reason": "needs inpatient care"},
}


def driver_in(state: str) -> Driver:
    d = Driver()
    if state == "initial":
        d.to_initial()
    elif state == "middle":
        d.to_middle()
    elif state == "termination":
        d.to_termination()
    elif state == "maintenance":
        d.to_maintenance()
    assert d.course.state == state
    return d


def driver_in_final(state: str) -> Driver:
    d = Driver()
    if state == "completed":
        d.to_termination()
        d.termination_tasks()
        d.ok("course_completed")
    elif state == "discontinued":
        d.ok("course_discontinued", reason="moved away")
    else:
        d.ok("course_referred", reason="needs inpatient care")
    assert d.course.state == state
    return d


# --- the vocabulary and where each event is allowed ------------------------------------------


@pytest.mark.parametrize("state", sorted(ALLOWED))
def test_each_state_allows_exactly_the_events_spec_lists(state):
    assert set(driver_in(state).course.allowed_events()) == ALLOWED[state]


@pytest.mark.parametrize("state", sorted(ALLOWED))
def test_event_types_outside_their_states_are_not_allowed(state):
    for etype in sorted(set(PAYLOADS) - ALLOWED[state]):
        d = driver_in(state)
        rejection = d.rejected("not_allowed", etype, **PAYLOADS[etype])
        assert rejection.event_type == etype


def test_not_allowed_message_lists_what_the_state_allows():
    d = Driver()
    rejection = d.rejected("not_allowed", "session_held")
    for etype in ALLOWED["assessment"]:
        assert etype in rejection.message


def test_course_opened_creates_the_course_in_assessment():
    course = Course.open(opened())
    assert course.state == "assessment"
    assert course.course_id == "c-1"
    assert course.protocol.id == "ipt-depression"
    assert course.protocol.version == "1.0.0"


def test_course_opened_defaults_adaptations_to_none_and_format_to_individual():
    course = Course.open(opened())
    assert course.protocol.adaptations == []
    assert course.facts.format == "individual"


def test_course_opened_accepts_patient_age_and_actor():
    course = Course.open(opened(patient={"age": 44}, actor="clin-3"))
    assert course.facts.patient_age == 44


@pytest.mark.parametrize(
    "fields",
    [
        {"patient": {"age": 44, "name": "Jane"}},
        {"patient": {"age": 44.0}},
        {"patient": {"age": True}},
        {"patient": 44},
        {"adaptations": ["x", "x"]},
        {"adaptations": "adolescent"},
        {"format": "family"},
        {"course_id": 7},
        {"protocol": None},
        {"nickname": "c"},
    ],
    ids=lambda f: "-".join(f"{k}={v!r}" for k, v in f.items()),
)
def test_malformed_course_opened_is_invalid_event(fields):
    course, result = Course.try_open(opened(**fields))
    assert course is None
    assert result.code == "invalid_event"


def test_course_opened_without_course_id_is_invalid_event():
    event = opened()
    del event["course_id"]
    assert Course.try_open(event)[1].code == "invalid_event"


def test_open_raises_event_rejected_with_the_rejection():
    with pytest.raises(EventRejected) as info:
        Course.open(opened(format="group"))
    assert info.value.rejection.code == "guard_failed"
    assert info.value.rejection.guards == ("format_offered",)


def test_group_format_without_an_adaptation_offering_it_is_guard_failed():
    course, result = Course.try_open(opened(format="group"))
    assert course is None
    assert result.code == "guard_failed"


def test_an_event_before_course_opened_is_no_course():
    course, result = Course.try_open({"type": "session_held", "at": iso(T0)})
    assert course is None
    assert result.code == "no_course"


def test_no_course_comes_before_invalid_event():
    course, result = Course.try_open({"type": "session_held", "at": "yesterday", "number": "x"})
    assert result.code == "no_course"


def test_later_well_formed_course_opened_is_not_allowed_without_resolving_its_protocol():
    d = Driver()
    later = opened("c-2", T0 + timedelta(hours=2), protocol="no-such-protocol", adaptations=["nope"])
    rejection = d.course.apply(later)
    assert rejection.code == "not_allowed"
    assert d.course.protocol.id == "ipt-depression"


def test_later_malformed_course_opened_is_invalid_event():
    d = Driver()
    rejection = d.course.apply(opened("c-2", T0 + timedelta(hours=2), colour="blue"))
    assert rejection.code == "invalid_event"


# --- fields and types --------------------------------------------------------------------------


@pytest.mark.parametrize("etype", sorted(PAYLOADS))
def test_unknown_fields_are_invalid(etype):
    d = Driver()
    d.rejected("invalid_event", etype, **PAYLOADS[etype], colour="blue")


def test_unknown_event_type_is_invalid():
    Driver().rejected("invalid_event", "session_cancelled")


@pytest.mark.parametrize("event", [{"at": iso(T0)}, {"type": 3, "at": iso(T0)}, {"type": None}])
def test_missing_or_non_string_type_is_invalid(event):
    d = Driver()
    assert d.course.apply(event).code == "invalid_event"


def test_an_event_that_is_not_an_object_is_invalid():
    d = Driver()
    assert d.course.apply(["session_held"]).code == "invalid_event"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "etype,fields",
    [
        ("measure_recorded", {"instrument": "phq9"}),
        ("risk_flagged", {}),
        ("risk_assessed", {"level": "low"}),
        ("risk_assessed", {"safety_plan": False}),
        ("diagnosis_confirmed", {}),
    ],
)
def test_missing_required_fields_are_invalid(etype, fields):
    Driver().rejected("invalid_event", etype, **fields)


def test_missing_at_is_invalid():
    d = Driver()
    assert d.course.apply({"type": "risk_flagged", "reason": "x"}).code == "invalid_event"


@pytest.mark.parametrize(
    "at",
    [
        "2025-01-06T10:00:00Z",
        "2025-01-06T10:00:00+00:00",
        "2025-01-06T12:00:00+02:00",
        "2025-01-06T05:30:00-04:30",
        "2025-01-06T10:00:00.250Z",
        "2025-01-06t10:00:00z",
    ],
)
def test_rfc3339_times_with_z_or_offset_are_accepted(at):
    d = Driver()
    d.ok("risk_flagged", reason="x", at=at)


@pytest.mark.parametrize(
    "at",
    [
        "2025-01-06T10:00:00",  # naive
        "2025-01-06",
        "2025-01-06 10:00:00Z",
        "2025-01-06T10:00Z",
        "2025-01-06T10:00:00+0200",
        "2025-02-30T10:00:00Z",
        "2025-01-06T25:00:00Z",
        "monday morning",
        1736157600,
        None,
    ],
)
def test_times_that_are_not_rfc3339_with_zone_are_invalid(at):
    Driver().rejected("invalid_event", "risk_flagged", reason="x", at=at)


@pytest.mark.parametrize("actor", [7, ["clin-3"], {"id": "clin-3"}])
def test_actor_must_be_a_string(actor):
    Driver().rejected("invalid_event", "risk_flagged", reason="x", actor=actor)


def test_actor_is_optional_and_accepted_as_a_string():
    Driver().ok("risk_flagged", reason="x", actor="clin-3")


@pytest.mark.parametrize("number", [1.0, True, "1", [1]])
def test_session_number_must_be_a_json_integer(number):
    driver_in("initial").rejected("invalid_event", "session_held", number=number)


@pytest.mark.parametrize("planned", [12.0, True, "12"])
def test_planned_sessions_must_be_a_json_integer(planned):
    d = driver_in("initial")
    d.ok("problem_area_selected", area="grief")
    d.rejected("invalid_event", "formulation_agreed", planned_sessions=planned)


@pytest.mark.parametrize("planned", [0, -1, 2.0])
def test_maintenance_planned_sessions_must_be_an_int_of_at_least_one(planned):
    d = Driver()
    d.to_termination()
    d.termination_tasks()
    d.rejected("invalid_event", "maintenance_started", frequency="weekly", planned_sessions=planned)


@pytest.mark.parametrize("frequency", ["daily", "Weekly", None])
def test_maintenance_frequency_is_weekly_biweekly_or_monthly(frequency):
    d = Driver()
    d.to_termination()
    d.termination_tasks()
    d.rejected("invalid_event", "maintenance_started", frequency=frequency, planned_sessions=3)


@pytest.mark.parametrize("level", ["severe", "LOW", 1])
def test_risk_level_is_low_moderate_or_high(level):
    Driver().rejected("invalid_event", "risk_assessed", level=level, safety_plan=True)


@pytest.mark.parametrize("safety_plan", [1, "yes", None])
def test_safety_plan_must_be_a_boolean(safety_plan):
    Driver().rejected("invalid_event", "risk_assessed", level="low", safety_plan=safety_plan)


@pytest.mark.parametrize("value", [1, "no"])
def test_psychotic_features_must_be_a_boolean(value):
    Driver().rejected("invalid_event", "diagnosis_confirmed", diagnosis="major_depressive_disorder",
                      psychotic_features=value)


@pytest.mark.parametrize("techniques", ["role_play", [1], [None]])
def test_session_techniques_must_be_a_list_of_strings(techniques):
    driver_in("initial").rejected("invalid_event", "session_held", techniques=techniques)


def test_session_techniques_default_to_none():
    d = driver_in("initial")
    d.ok("session_held", number=1)
    assert d.course.facts.sessions[0].techniques == []


@pytest.mark.parametrize("signs", [[], "early waking", [3]])
def test_relapse_plan_needs_a_non_empty_list_of_warning_signs(signs):
    d = Driver()
    d.to_termination()
    d.rejected("invalid_event", "relapse_plan_recorded", warning_signs=signs)


@pytest.mark.parametrize("etype", ["course_discontinued", "course_referred"])
def test_ending_reason_must_be_non_empty(etype):
    d = Driver()
    d.rejected("invalid_event", etype, reason="")
    d.rejected("invalid_event", etype)


def test_referral_destination_is_an_optional_string():
    d = Driver()
    d.rejected("invalid_event", "course_referred", reason="x", to=5)
    d.ok("course_referred", reason="needs inpatient care", to="crisis team")
    assert d.course.state == "referred_out"


@pytest.mark.parametrize("stage", ["renegotiation", "impasse", "dissolution"])
def test_role_dispute_needs_a_stage(stage):
    d = driver_in("initial")
    d.rejected("invalid_event", "problem_area_selected", area="role_dispute")
    d.ok("problem_area_selected", area="role_dispute", stage=stage)


def test_stage_is_forbidden_for_other_problem_areas():
    driver_in("initial").rejected("invalid_event", "problem_area_selected", area="grief", stage="impasse")


def test_unknown_stage_is_invalid():
    driver_in("initial").rejected(
        "invalid_event", "problem_area_selected", area="role_dispute", stage="truce"
    )


def test_unknown_problem_area_is_invalid():
    driver_in("initial").rejected("invalid_event", "problem_area_selected", area="loneliness")


def test_problem_area_an_adaptation_adds_is_unknown_without_it():
    driver_in("initial").rejected(
        "invalid_event", "problem_area_selected", area="grief_for_lost_healthy_self"
    )


def test_event_an_adaptation_adds_is_unknown_without_it():
    Driver().rejected("invalid_event", "guardian_consent_recorded")


def test_at_most_two_distinct_problem_areas():
    d = driver_in("initial")
    d.ok("problem_area_selected", area="grief")
    d.ok("problem_area_selected", area="role_dispute", stage="impasse")
    rejection = d.rejected("guard_failed", "problem_area_selected", area="role_transition")
    assert rejection.guards == ("problem_area_available",)


def test_the_same_problem_area_again_is_guard_failed():
    d = driver_in("initial")
    d.ok("problem_area_selected", area="grief")
    rejection = d.rejected("guard_failed", "problem_area_selected", area="grief")
    assert rejection.guards == ("problem_area_available",)


def test_risk_assessed_without_an_open_review_is_guard_failed():
    rejection = Driver().rejected("guard_failed", "risk_assessed", level="low", safety_plan=False)
    assert rejection.guards == ("risk_review_open",)


def test_session_number_must_be_the_next_one():
    d = driver_in("initial")
    d.ok("session_held", number=1)
    rejection = d.rejected("guard_failed", "session_held", number=3)
    assert rejection.guards == ("session_number_next",)
    d.rejected("guard_failed", "session_held", number=1)
    d.ok("session_held", number=2)
    d.ok("session_held")
    d.ok("session_held", number=4)


def test_session_missed_counts_a_missed_session():
    d = driver_in("initial")
    d.ok("session_missed")
    assert d.course.facts.missed_sessions == 1
    assert d.course.sessions_held == 0


# --- time ----------------------------------------------------------------------------------------


def test_event_earlier_than_the_last_accepted_is_out_of_order():
    d = Driver()
    d.ok("risk_flagged", reason="x", at="2025-01-07T09:00:00Z")
    d.rejected("out_of_order", "measure_recorded", **phq9(10), at="2025-01-07T08:59:59Z")


def test_event_at_the_same_time_as_the_last_is_accepted():
    d = Driver()
    d.ok("risk_flagged", reason="x", at="2025-01-07T09:00:00Z")
    d.ok("measure_recorded", **phq9(10), at="2025-01-07T09:00:00Z")


def test_event_before_course_opened_time_is_out_of_order():
    d = Driver()
    d.rejected("out_of_order", "risk_flagged", reason="x", at=iso(T0 - timedelta(seconds=1)))


def test_times_are_compared_across_offsets():
    d = Driver()
    d.ok("risk_flagged", reason="x", at="2025-01-07T09:00:00Z")
    # 10:30 at +02:00 is 08:30Z: earlier
    d.rejected("out_of_order", "measure_recorded", **phq9(10), at="2025-01-07T10:30:00+02:00")
    # 10:30 at -01:00 is 11:30Z: later
    d.ok("measure_recorded", **phq9(10), at="2025-01-07T10:30:00-01:00")


def test_a_rejected_event_does_not_move_the_clock():
    d = Driver()
    d.rejected("not_allowed", "session_held", at="2026-01-01T00:00:00Z")
    d.ok("risk_flagged", reason="x", at="2025-01-06T10:00:00Z")


# --- final states --------------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["completed", "discontinued", "referred_out"])
def test_final_states_accept_nothing(state):
    d = driver_in_final(state)
    assert d.course.allowed_events() == []
    assert d.course.is_closed
    d.rejected("course_closed", "measure_recorded", **phq9(3))
    d.rejected("course_closed", "course_discontinued", reason="again")


@pytest.mark.parametrize("state", ["completed", "discontinued", "referred_out"])
def test_course_closed_comes_before_every_other_check(state):
    d = driver_in_final(state)
    d.rejected("course_closed", "no_such_event")
    d.rejected("course_closed", "measure_recorded", instrument="phq9", score="many", at="then")
    d.rejected("course_closed", "session_held", at=iso(T0 - timedelta(days=1)))


# --- check order: invalid_event > not_allowed > out_of_order > guard_failed ------------------


def test_invalid_event_comes_before_not_allowed():
    d = Driver()  # session_held is not allowed in assessment, and the number is malformed
    d.rejected("invalid_event", "session_held", number="one")


def test_unknown_problem_area_is_invalid_even_where_the_event_is_not_allowed():
    Driver().rejected("invalid_event", "problem_area_selected", area="loneliness")


def test_unknown_instrument_is_invalid_before_out_of_order():
    d = Driver()
    d.rejected("invalid_event", "measure_recorded", instrument="bdi2", score=20,
               at=iso(T0 - timedelta(days=1)))


def test_not_allowed_comes_before_out_of_order():
    d = Driver()
    d.rejected("not_allowed", "termination_started", at=iso(T0 - timedelta(days=1)))


def test_out_of_order_comes_before_guard_failed():
    d = Driver()  # no diagnosis and no baseline: treatment_started would fail its guards
    d.rejected("out_of_order", "treatment_started", at=iso(T0 - timedelta(days=1)))
    d.rejected("guard_failed", "treatment_started")


# --- §5 rejections -------------------------------------------------------------------------------


def test_rejection_carries_code_guards_and_message_naming_the_failed_requirements():
    d = Driver()
    d.ok("diagnosis_confirmed", diagnosis="bipolar_i", psychotic_features=True)
    d.ok("risk_flagged", reason="x")
    rejection = d.rejected("guard_failed", "treatment_started")
    assert isinstance(rejection, Rejection)
    assert rejection.guards == (
        "diagnosis_indicated", "no_psychotic_features", "baseline_recorded", "no_open_review"
    )
    message = rejection.message
    assert "bipolar i" in message
    assert "psychotic" in message
    assert "baseline" in message
    assert "risk review" in message
    assert rejection.to_dict() == {
        "code": "guard_failed", "type": "treatment_started",
        "guards": list(rejection.guards), "message": message,
    }


def test_rejections_other_than_guard_failed_name_no_guards():
    d = Driver()
    for rejection in (
        d.rejected("invalid_event", "session_cancelled"),
        d.rejected("not_allowed", "session_held"),
        d.rejected("out_of_order", "risk_flagged", reason="x", at=iso(T0 - timedelta(days=1))),
    ):
        assert rejection.guards == ()
        assert rejection.message


def test_a_rejected_event_changes_nothing_and_is_not_recorded():
    d = Driver()
    d.to_initial()
    history = list(d.course.history)
    snapshot = d.course.snapshot()
    for event in (
        {"type": "problem_area_selected", "at": iso(T0 + timedelta(days=1)), "area": "grief",
         "stage": "impasse"},
        {"type": "termination_started", "at": iso(T0 + timedelta(days=1))},
        {"type": "middle_phase_started", "at": iso(T0 + timedelta(days=1))},
        {"type": "session_held", "at": iso(T0 - timedelta(days=1))},
    ):
        assert not d.course.apply(event).ok
        assert d.course.snapshot() == snapshot
        assert d.course.history == history


def test_accepted_result_reports_sequence_and_states():
    d = Driver()
    d.assess()
    result = d.ok("treatment_started")
    assert (result.event_type, result.previous_state, result.state) == (
        "treatment_started", "assessment", "initial")
    assert result.state_changed
    assert result.seq == 4
