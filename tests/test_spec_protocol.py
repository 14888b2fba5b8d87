"""SPEC §2: the base protocol ipt-depression 1.0.0 (indication, sessions, phases, reviews)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from spec_support import Driver, hamd17, phq9

from iptflow import default_registry

PHASE_ADVANCING = ["treatment_started", "middle_phase_started", "termination_started",
                   "maintenance_started", "course_completed"]


def test_base_protocol_is_ipt_depression_version_1_0_0():
    course = Driver().course
    assert (course.protocol.id, course.protocol.version) == ("ipt-depression", "1.0.0")
    assert course.protocol.session_range.min == 12
    assert course.protocol.session_range.max == 16
    assert course.protocol.primary_instruments == ["phq9", "hamd17"]


# --- treatment_started -------------------------------------------------------------------------


def test_treatment_starts_with_indicated_diagnosis_baseline_and_no_review():
    d = Driver()
    d.to_initial()
    assert d.course.state == "initial"


@pytest.mark.parametrize("diagnosis", ["bipolar_i", "bulimia_nervosa", "ptsd", "dysthymia"])
def test_only_major_depressive_disorder_is_indicated(diagnosis):
    d = Driver()
    d.ok("measure_recorded", **phq9(18))
    d.ok("diagnosis_confirmed", diagnosis=diagnosis)
    assert d.rejected("guard_failed", "treatment_started").guards == ("diagnosis_indicated",)


def test_treatment_needs_a_confirmed_diagnosis():
    d = Driver()
    d.ok("measure_recorded", **phq9(18))
    assert d.rejected("guard_failed", "treatment_started").guards == ("diagnosis_indicated",)


def test_psychotic_features_block_treatment():
    d = Driver()
    d.ok("measure_recorded", **phq9(18))
    d.ok("diagnosis_confirmed", diagnosis="major_depressive_disorder", psychotic_features=True)
    assert d.rejected("guard_failed", "treatment_started").guards == ("no_psychotic_features",)
    d.ok("diagnosis_confirmed", diagnosis="major_depressive_disorder")  # re-confirmed without
    d.ok("treatment_started")


def test_treatment_needs_a_baseline():
    d = Driver()
    d.ok("diagnosis_confirmed", diagnosis="major_depressive_disorder")
    assert d.rejected("guard_failed", "treatment_started").guards == ("baseline_recorded",)


@pytest.mark.parametrize("measure", [phq9(18), hamd17(20), phq9(18, with_items=False)])
def test_any_primary_measure_in_assessment_is_a_baseline(measure):
    d = Driver()
    d.to_initial(measure)
    assert d.course.facts.baseline.instrument == measure["instrument"]


def test_baseline_is_the_first_primary_measure_in_assessment():
    d = Driver()
    d.ok("measure_recorded", **hamd17(22))
    d.ok("measure_recorded", **phq9(18))
    assert d.course.facts.baseline.instrument == "hamd17"
    assert d.course.facts.baseline.score == 22


def test_a_rejected_measure_is_no_baseline():
    d = Driver()
    d.rejected("invalid_event", "measure_recorded", instrument="phq9", score=30)
    d.ok("diagnosis_confirmed", diagnosis="major_depressive_disorder")
    assert d.rejected("guard_failed", "treatment_started").guards == ("baseline_recorded",)


def test_measures_after_assessment_are_not_a_baseline():
    d = Driver()
    d.ok("measure_recorded", **phq9(18))
    d.ok("diagnosis_confirmed", diagnosis="major_depressive_disorder")
    d.ok("treatment_started")
    assert d.course.facts.baseline.seq == 2


# --- session range and contracts -----------------------------------------------------------------


def test_before_the_contract_at_most_the_range_maximum_of_acute_sessions():
    d = Driver()
    d.to_initial()
    d.sessions(16, days_apart=1)
    rejection = d.rejected("guard_failed", "session_held")
    assert rejection.guards == ("session_within_contract",)
    assert "16" in rejection.message


def test_after_the_contract_at_most_planned_sessions():
    d = Driver()
    d.to_initial()
    d.sessions(12, days_apart=1)
    d.initial_tasks(planned=12)
    assert d.rejected("guard_failed", "session_held").guards == ("session_within_contract",)


def test_contract_cap_applies_in_termination():
    d = Driver()
    d.to_termination(planned=12)
    d.sessions(4)
    assert d.course.sessions_held == 12
    assert d.rejected("guard_failed", "session_held").guards == ("session_within_contract",)


def test_agreeing_again_replaces_the_contract():
    d = Driver()
    d.to_initial()
    d.initial_tasks(planned=16)
    d.ok("formulation_agreed", planned_sessions=12)
    assert d.course.facts.planned_sessions == 12
    d.sessions(12, days_apart=1)
    d.rejected("guard_failed", "session_held")


def test_formulation_needs_a_problem_area():
    d = Driver()
    d.to_initial()
    assert d.rejected("guard_failed", "formulation_agreed", planned_sessions=12).guards == (
        "problem_area_chosen",)


@pytest.mark.parametrize("planned", [11, 17, 0])
def test_planned_sessions_must_lie_inside_the_session_range(planned):
    d = Driver()
    d.to_initial()
    d.ok("problem_area_selected", area="grief")
    assert d.rejected("guard_failed", "formulation_agreed", planned_sessions=planned).guards == (
        "planned_sessions_in_range",)


@pytest.mark.parametrize("planned", [12, 16])
def test_planned_sessions_at_the_range_bounds_are_accepted(planned):
    d = Driver()
    d.to_initial()
    d.ok("problem_area_selected", area="grief")
    d.ok("formulation_agreed", planned_sessions=planned)


def test_planned_sessions_not_below_sessions_already_held():
    d = Driver()
    d.to_initial()
    d.sessions(13, days_apart=1)
    d.ok("problem_area_selected", area="grief")
    assert d.rejected("guard_failed", "formulation_agreed", planned_sessions=12).guards == (
        "planned_not_below_held",)
    d.ok("formulation_agreed", planned_sessions=13)


def test_acute_sessions_are_those_of_initial_middle_and_termination():
    d = Driver()
    d.to_termination()
    d.termination_tasks()
    assert d.course.facts.acute_sessions == 10
    assert d.course.facts.sessions_by_state == {"initial": 3, "middle": 5, "termination": 2}


# --- middle phase ----------------------------------------------------------------------------------


def test_middle_phase_lists_every_missing_requirement():
    d = Driver()
    d.to_initial()
    d.ok("risk_flagged", reason="x")
    assert d.rejected("guard_failed", "middle_phase_started").guards == (
        "session_held", "sick_role_given", "interpersonal_inventory_completed",
        "problem_area_chosen", "contract_agreed", "no_open_review",
    )


@pytest.mark.parametrize(
    "skip,guard",
    [
        ("session_held", "session_held"),
        ("sick_role_given", "sick_role_given"),
        ("interpersonal_inventory_completed", "interpersonal_inventory_completed"),
        ("formulation_agreed", "contract_agreed"),
    ],
)
def test_middle_phase_requires_each_initial_task(skip, guard):
    d = Driver()
    d.to_initial()
    if skip != "session_held":
        d.ok("session_held")
    for etype, fields in [
        ("sick_role_given", {}),
        ("interpersonal_inventory_completed", {}),
        ("problem_area_selected", {"area": "grief"}),
        ("formulation_agreed", {"planned_sessions": 12}),
    ]:
        if etype != skip:
            d.ok(etype, **fields)
    assert d.rejected("guard_failed", "middle_phase_started").guards == (guard,)


def test_middle_session_rejected_once_two_sessions_remain():
    d = Driver()
    d.to_middle(sessions=3, planned=12)
    d.ok("measure_recorded", **phq9(9))
    d.sessions(7)  # 10 held: 2 remain for termination
    rejection = d.rejected("guard_failed", "session_held")
    assert rejection.guards == ("termination_room",)
    assert "termination" in rejection.message


# --- termination -------------------------------------------------------------------------------------


def test_termination_needs_at_most_four_remaining_sessions():
    d = Driver()
    d.to_middle(sessions=3, planned=12)
    d.sessions(4)  # 7 held, 5 remain
    assert d.rejected("guard_failed", "termination_started").guards == ("termination_window",)
    d.sessions(1)
    d.ok("termination_started")
    assert d.course.state == "termination"


def test_completion_from_termination_lists_every_missing_requirement():
    d = Driver()
    d.to_termination()
    d.ok("risk_flagged", reason="x")
    assert d.rejected("guard_failed", "course_completed").guards == (
        "termination_sessions", "progress_reviewed", "relapse_plan_recorded",
        "termination_measure", "no_open_review",
    )


@pytest.mark.parametrize("etype", ["course_completed", "maintenance_started"])
def test_completion_and_maintenance_need_two_termination_sessions(etype):
    d = Driver()
    d.to_termination()
    d.termination_tasks(sessions=1)
    fields = {"frequency": "monthly", "planned_sessions": 2} if etype == "maintenance_started" else {}
    assert d.rejected("guard_failed", etype, **fields).guards == ("termination_sessions",)
    d.sessions(1)
    d.ok(etype, **fields)


@pytest.mark.parametrize("etype", ["course_completed", "maintenance_started"])
def test_termination_measure_must_use_the_baseline_instrument(etype):
    d = Driver()
    d.to_termination(baseline=hamd17(24))
    d.termination_tasks(measure=phq9(3))  # phq9 is not the baseline's instrument
    fields = {"frequency": "monthly", "planned_sessions": 2} if etype == "maintenance_started" else {}
    assert d.rejected("guard_failed", etype, **fields).guards == ("termination_measure",)
    d.ok("measure_recorded", **hamd17(6))
    d.ok(etype, **fields)


def test_a_measure_before_termination_does_not_count_for_completion():
    d = Driver()
    d.to_termination()  # phq9 measured in middle
    d.sessions(2)
    d.ok("progress_reviewed")
    d.ok("relapse_plan_recorded", warning_signs=["insomnia"])
    assert d.rejected("guard_failed", "course_completed").guards == ("termination_measure",)


def test_completed_course_is_in_completed():
    d = Driver()
    d.to_termination()
    d.termination_tasks()
    d.ok("course_completed")
    assert d.course.state == "completed"


# --- maintenance -----------------------------------------------------------------------------------


def test_maintenance_sessions_count_against_the_maintenance_contract_only():
    d = Driver()
    d.to_termination(planned=12)
    d.termination_tasks(sessions=4)  # all 12 acute sessions held
    d.ok("maintenance_started", frequency="monthly", planned_sessions=3)
    assert d.course.state == "maintenance"
    d.sessions(3, days_apart=30)
    assert d.course.sessions_held == 15
    assert d.course.facts.acute_sessions == 12
    rejection = d.rejected("guard_failed", "session_held")
    assert rejection.guards == ("within_maintenance_contract",)


def test_maintenance_session_numbers_continue_the_course_count():
    d = Driver()
    d.to_maintenance()
    d.ok("session_held", number=11)
    d.rejected("guard_failed", "session_held", number=1)


def test_completion_from_maintenance_needs_only_no_open_review():
    d = Driver()
    d.to_maintenance()
    d.ok("risk_flagged", reason="x")
    assert d.rejected("guard_failed", "course_completed").guards == ("no_open_review",)
    d.ok("risk_assessed", level="low", safety_plan=True)
    d.ok("course_completed")
    assert d.course.state == "completed"


# --- reviews -----------------------------------------------------------------------------------------


def test_phq9_item_9_above_zero_opens_the_risk_review():
    d = Driver()
    result = d.ok("measure_recorded", **phq9(12, item9=1))
    assert result.opened_reviews == ("risk",)
    assert d.course.open_reviews == ["risk"]


def test_phq9_item_9_of_zero_opens_no_review():
    d = Driver()
    d.ok("measure_recorded", **phq9(24, item9=0))
    assert d.course.open_reviews == []


def test_phq9_without_items_opens_no_review():
    d = Driver()
    d.ok("measure_recorded", **phq9(27, with_items=False))
    assert d.course.open_reviews == []


def test_hamd17_opens_no_review():
    d = Driver()
    d.ok("measure_recorded", instrument="hamd17", score=17, items=[1] * 17)
    assert d.course.open_reviews == []


def test_risk_flagged_opens_and_risk_assessed_closes_the_risk_review():
    d = Driver()
    assert d.ok("risk_flagged", reason="hopelessness").opened_reviews == ("risk",)
    assert d.course.open_reviews == ["risk"]
    assert d.ok("risk_assessed", level="moderate", safety_plan=True).closed_reviews == ("risk",)
    assert d.course.open_reviews == []
    d.rejected("guard_failed", "risk_assessed", level="low", safety_plan=True)


def test_a_second_risk_signal_keeps_one_open_review():
    d = Driver()
    d.ok("risk_flagged", reason="x")
    d.ok("measure_recorded", **phq9(12, item9=2))
    assert d.course.open_reviews == ["risk"]
    d.ok("risk_assessed", level="low", safety_plan=False)
    assert d.course.open_reviews == []


def _at_phase_advance(etype: str) -> tuple[Driver, dict]:
    d = Driver()
    if etype == "treatment_started":
        d.assess()
        return d, {}
    if etype == "middle_phase_started":
        d.to_initial()
        d.sessions(1)
        d.initial_tasks()
        return d, {}
    if etype == "termination_started":
        d.to_middle(3, 12)
        d.ok("measure_recorded", **phq9(9))
        d.sessions(5)
        return d, {}
    d.to_termination()
    d.termination_tasks()
    return d, ({"frequency": "weekly", "planned_sessions": 2} if etype == "maintenance_started" else {})


@pytest.mark.parametrize("etype", PHASE_ADVANCING)
def test_an_open_review_blocks_every_phase_advancing_event(etype):
    d, fields = _at_phase_advance(etype)
    d.ok("risk_flagged", reason="x")
    rejection = d.rejected("guard_failed", etype, **fields)
    assert rejection.guards == ("no_open_review",)
    assert "risk review" in rejection.message
    d.ok("risk_assessed", level="low", safety_plan=True)
    d.ok(etype, **fields)


def test_sessions_and_measures_are_accepted_while_a_review_is_open():
    d = Driver()
    d.to_initial()
    d.ok("measure_recorded", **phq9(14, item9=1))
    d.ok("session_held")
    d.ok("session_missed")
    d.ok("measure_recorded", **hamd17(20))
    d.ok("sick_role_given")
    assert d.course.open_reviews == ["risk"]


@pytest.mark.parametrize("etype,dest", [("course_discontinued", "discontinued"),
                                        ("course_referred", "referred_out")])
def test_discontinuation_and_referral_are_possible_with_an_open_review(etype, dest):
    d = Driver()
    d.to_initial()
    d.ok("risk_flagged", reason="x")
    d.ok(etype, reason="patient asked for it")
    assert d.course.state == dest


@pytest.mark.parametrize("state", ["assessment", "initial", "middle", "termination", "maintenance"])
@pytest.mark.parametrize("etype,dest", [("course_discontinued", "discontinued"),
                                        ("course_referred", "referred_out")])
def test_discontinuation_and_referral_from_every_active_state(state, etype, dest):
    d = Driver()
    {"assessment": lambda: None, "initial": d.to_initial, "middle": d.to_middle,
     "termination": d.to_termination, "maintenance": d.to_maintenance}[state]()
    d.ok(etype, reason="moved away")
    assert d.course.state == dest
    assert d.course.facts.records["ending"]["reason"] == "moved away"


# --- the event reference (docs/events.md) stays true to the protocol ----------------------------


def test_event_reference_lists_the_requirements_of_every_guarded_transition():
    doc = (Path(__file__).resolve().parents[1] / "docs" / "events.md").read_text(encoding="utf-8")
    documented: dict[tuple[str, str], list[str]] = {}
    for event, sources, names in re.findall(r"^\| `(\w+)` \(([^)]*)\) \| ([^|]+) \|$", doc, re.M):
        if names.startswith("the same as"):
            names = documented[("course_completed", "termination")]
        else:
            names = re.findall(r"`(\w+)`", names)
        for source in [s.strip() for s in sources.split(",")]:
            documented[(event, source)] = names
    resolved = default_registry().resolve("ipt-depression")
    active = [s.name for s in resolved.states if not s.final]
    actual = {}
    for t in resolved.transitions:
        if t.requires:
            actual[(t.event, t.source[0])] = list(t.requires)
    expanded = {}
    for (event, source), names in documented.items():
        for state in active if source == "any" else [source]:
            expanded[(event, state)] = names
    assert expanded == actual
    assert "| `course_opened` | `format_offered` |" in doc
    assert resolved.open_requires == ["format_offered"]
