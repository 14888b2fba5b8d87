"""One test per (2.0) rule of the base protocol (Appendix A), each sending the same events under
``ipt-depression@1.0.0`` and ``ipt-depression@2.0.0`` and checking the documented difference."""

from __future__ import annotations

from typing import Any

import pytest
from spec_support import Driver, phq9

V1, V2 = "ipt-depression@1.0.0", "ipt-depression@2.0.0"
SCREENED = {**phq9(18)}  # items: item 9 is known (0)


def both(**open_fields: Any) -> tuple[Driver, Driver]:
    return Driver(protocol=V1, **open_fields), Driver(protocol=V2, **open_fields)


def codes(d: Driver) -> list[str]:
    return [x.code for x in d.course.deviations]


def test_rule_null_counts_as_absent_in_both_versions() -> None:
    for d in both(patient={"age": None}, actor=None):
        d.ok("measure_recorded", **phq9(18), actor=None)
        d.ok("diagnosis_confirmed", diagnosis="major_depressive_disorder", psychotic_features=None)
        d.ok("treatment_started")
        d.ok("session_held", number=None, techniques=None)
        d.rejected("invalid_event", "risk_flagged", reason=None)  # a required field
        assert d.course.facts.patient_age is None and d.course.sessions_held == 1
    old, new = both()
    old.rejected("invalid_event", "measure_recorded", instrument="phq9", score=3, item9=None)
    new.ok("measure_recorded", instrument="phq9", score=3, item9=None)


def test_rule_item9_is_a_2_0_field_checked_against_the_score_and_items() -> None:
    old, new = both()
    old.rejected("invalid_event", "measure_recorded", instrument="phq9", score=12, item9=1)
    new.ok("measure_recorded", instrument="phq9", score=12, item9=1)
    assert new.course.facts.measures[-1].item9 == 1
    assert new.course.snapshot()["facts"]["measures"][-1]["item9"] == 1
    for bad in ({"item9": 4}, {"item9": -1}, {"score": 1, "item9": 2}, {"item9": True},
                {"items": phq9(12, item9=2)["items"], "item9": 1}):
        fields = {"instrument": "phq9", "score": 12, **bad}
        new.rejected("invalid_event", "measure_recorded", **fields)
    message = new.rejected("invalid_event", "measure_recorded", instrument="hamd17", score=12,
                           item9=0).message
    assert "item9 is only recorded with the PHQ-9 or PHQ-A" in message


def test_rule_unknown_item9_with_a_score_opens_the_risk_review() -> None:
    old, new = both()
    for d in (old, new):
        d.ok("measure_recorded", instrument="phq9", score=22)
    assert (old.course.open_reviews, new.course.open_reviews) == ([], ["risk"])
    _, fresh = both()
    fresh.ok("measure_recorded", instrument="phq9", score=0)
    fresh.ok("measure_recorded", instrument="phq9", score=22, item9=0)
    assert fresh.course.open_reviews == []
    fresh.ok("measure_recorded", instrument="phq9", score=22, item9=2)
    assert fresh.course.open_reviews == ["risk"]


def test_rule_suicide_screen_before_treatment() -> None:
    old, new = both()
    for d in (old, new):
        d.assess({"instrument": "hamd17", "score": 20})
    old.ok("treatment_started")
    result = new.rejected("guard_failed", "treatment_started")
    assert result.guards == ("suicide_screen",)
    assert "no suicide screen in assessment" in result.message
    new.ok("risk_flagged", reason="screen")
    new.ok("risk_assessed", level="low", safety_plan=False)
    new.ok("treatment_started")
    _, by_score = both()
    by_score.assess({"instrument": "phq9", "score": 0})
    by_score.ok("treatment_started")


def test_rule_safety_plan_or_reason_at_moderate_or_high_risk() -> None:
    old, new = both()
    for d in (old, new):
        d.ok("measure_recorded", **phq9(20, item9=1))
    old.ok("risk_assessed", level="high", safety_plan=False)
    assert (old.course.open_reviews, codes(old)) == ([], [])
    result = new.rejected("guard_failed", "risk_assessed", level="high", safety_plan=False)
    assert result.guards == ("safety_plan_or_reason",)
    assert "a high risk needs a safety plan, or the reason there is none" in result.message
    new.rejected("guard_failed", "risk_assessed", level="moderate", safety_plan=False,
                 no_plan_reason="")
    assert new.course.open_reviews == ["risk"]
    new.ok("risk_assessed", level="moderate", safety_plan=False, no_plan_reason="declined")
    assert (new.course.open_reviews, codes(new)) == ([], ["no_safety_plan"])
    assert new.course.facts.records["risk_assessment"]["no_plan_reason"] == "declined"
    old.rejected("invalid_event", "risk_assessed", level="high", safety_plan=True,
                 no_plan_reason="x")


def test_rule_interpersonal_deficits_alone() -> None:
    old, new = both()
    for d in (old, new):
        d.to_initial(SCREENED)
        d.ok("problem_area_selected", area="grief")
    old.ok("problem_area_selected", area="interpersonal_deficits")
    result = new.rejected("guard_failed", "problem_area_selected", area="interpersonal_deficits")
    assert result.guards == ("interpersonal_deficits_alone",)
    assert "only when no life event fits" in result.message
    _, first = both()
    first.to_initial(SCREENED)
    first.ok("problem_area_selected", area="interpersonal_deficits")
    first.rejected("guard_failed", "problem_area_selected", area="role_dispute", stage="impasse")


def test_rule_replace_problem_areas_and_agree_the_formulation_again() -> None:
    old, new = both()
    for d in (old, new):
        d.to_initial(SCREENED)
        d.sessions(1)
        d.initial_tasks(planned=13, area="grief")
    old.rejected("invalid_event", "problem_area_selected", area="role_transition", replace=True)
    new.ok("problem_area_selected", area="interpersonal_deficits", replace=True)
    assert new.course.facts.problem_areas == [{"area": "interpersonal_deficits"}]
    assert new.course.facts.planned_sessions == 13  # the contract stays until agreed again
    result = new.rejected("guard_failed", "middle_phase_started")
    assert result.guards == ("contract_agreed",)
    new.ok("formulation_agreed", planned_sessions=12)
    new.ok("middle_phase_started")


def test_rule_ending_discussed_before_completion_and_maintenance() -> None:
    old, new = both()
    for d in (old, new):
        d.to_termination(baseline=SCREENED)
        d.termination_tasks(measure=phq9(4))
    old.rejected("invalid_event", "ending_discussed")
    old.ok("course_completed")
    for etype, fields in (("course_completed", {}),
                          ("maintenance_started", {"frequency": "monthly", "planned_sessions": 2})):
        result = new.rejected("guard_failed", etype, **fields)
        assert result.guards == ("ending_discussed",)
        assert "feelings about ending have not been discussed" in result.message
    new.ok("ending_discussed")
    new.ok("course_completed")


def test_rule_completion_from_maintenance() -> None:
    old, new = both()
    for d in (old, new):
        d.to_termination(baseline=SCREENED)
        d.termination_tasks(measure=phq9(4))
    new.ok("ending_discussed")
    for d in (old, new):
        d.ok("maintenance_started", frequency="monthly", planned_sessions=2)
    old.ok("course_completed")
    result = new.rejected("guard_failed", "course_completed")
    assert result.guards == ("ending_discussed_in_maintenance", "maintenance_measure")
    new.ok("ending_discussed")
    new.ok("measure_recorded", **phq9(4))
    new.advance(days=42, hours=-1)
    new.ok("course_completed")  # 42 x 24 hours after the measure exactly: still recent


def test_rule_maintenance_measure_older_than_42_days_does_not_count() -> None:
    d = Driver(protocol=V2)
    d.to_termination(baseline=SCREENED)
    d.termination_tasks(measure=phq9(4))
    d.ok("ending_discussed")
    d.ok("maintenance_started", frequency="monthly", planned_sessions=2)
    d.ok("ending_discussed")
    d.ok("measure_recorded", **phq9(4))
    d.advance(days=42)
    result = d.rejected("guard_failed", "course_completed")
    assert result.guards == ("maintenance_measure",)
    assert "in the last 42 days" in result.message


def test_rule_recurrence_once_per_run_and_no_completion_during_it() -> None:
    old, new = both()
    for d in (old, new):
        d.to_termination(baseline=SCREENED)
        d.termination_tasks(measure=phq9(11))  # in termination: not a recurrence
    new.ok("ending_discussed")
    for d in (old, new):
        d.ok("maintenance_started", frequency="monthly", planned_sessions=2)
        d.ok("measure_recorded", **phq9(12))
        d.ok("measure_recorded", **phq9(15))
    assert (codes(old), codes(new)) == ([], ["recurrence"])
    new.ok("ending_discussed")
    assert new.rejected("guard_failed", "course_completed").guards == ("no_recurrence_in_progress",)
    new.ok("measure_recorded", **phq9(9))
    new.ok("measure_recorded", **phq9(10))
    assert codes(new) == ["recurrence", "recurrence"]
    new.ok("measure_recorded", **phq9(4))
    new.ok("course_completed")


def test_rule_recurrence_thresholds_follow_the_outcome_instrument() -> None:
    d = Driver(protocol=V2)
    d.ok("risk_flagged", reason="screen")
    d.ok("risk_assessed", level="low", safety_plan=True)  # the suicide screen
    d.to_termination(baseline={"instrument": "hamd17", "score": 24})
    d.termination_tasks(measure={"instrument": "hamd17", "score": 6})
    d.ok("ending_discussed")
    d.ok("maintenance_started", frequency="monthly", planned_sessions=2)
    d.ok("measure_recorded", instrument="hamd17", score=14)
    assert "recurrence" not in codes(d)
    d.ok("measure_recorded", instrument="hamd17", score=15)
    assert codes(d)[-1] == "recurrence"


def test_rule_outcome_order_chooses_the_outcome_instrument_in_assessment() -> None:
    old, new = both()
    for d in (old, new):
        d.ok("measure_recorded", instrument="hamd17", score=20)
        d.ok("measure_recorded", **phq9(18))
        d.ok("diagnosis_confirmed", diagnosis="major_depressive_disorder")
        d.ok("treatment_started")
        d.ok("measure_recorded", instrument="hamd17", score=6)
        d.ok("measure_recorded", **phq9(12))
    assert (old.course.outcome.instrument, old.course.outcome.status) == ("hamd17", "remission")
    assert (new.course.outcome.instrument, new.course.outcome.status) == ("phq9", "partial_response")


@pytest.mark.parametrize("etype,fields", [
    ("course_discontinued", {"reason": "moved away"}),
    ("course_referred", {"reason": "needs a crisis team", "to": "crisis team"}),
])
def test_rule_handover_when_closing_with_an_open_review(etype: str, fields: dict) -> None:
    old, new = both()
    for d in (old, new):
        d.ok("measure_recorded", **phq9(18))
        d.ok("risk_flagged", reason="hopeless")
    old.ok(etype, **fields)
    assert (old.course.open_reviews, codes(old)) == (["risk"], [])
    result = new.rejected("guard_failed", etype, **fields)
    assert result.guards == ("handover_of_open_review",)
    assert "say who now holds it (handover)" in result.message
    new.rejected("guard_failed", etype, **fields, handover="")
    new.ok(etype, **fields, handover="Dr Osei holds the risk review")
    assert (new.course.open_reviews, codes(new)) == (["risk"], ["closed_with_open_review"])
    assert new.course.facts.records["ending"]["handover"] == "Dr Osei holds the risk review"
    _, quiet = both()
    quiet.ok(etype, **fields)  # no review open: no handover needed
    assert codes(quiet) == []
