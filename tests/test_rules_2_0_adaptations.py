"""One test per (2.0) rule of the adaptations, each comparing ``@1.0.0`` with ``@2.0.0``."""

from __future__ import annotations

from typing import Any

import pytest
from spec_support import Driver, phq9

from iptflow.research.report import build_report
from iptflow.store.api import Store

V1, V2 = "ipt-depression@1.0.0", "ipt-depression@2.0.0"


def both(adaptations: list[str], **fields: Any) -> tuple[Driver, Driver]:
    return (Driver(protocol=V1, adaptations=adaptations, **fields),
            Driver(protocol=V2, adaptations=adaptations, **fields))


def codes(d: Driver) -> list[str]:
    return [x.code for x in d.course.deviations]


# --- adolescent ----------------------------------------------------------------------------------


def test_rule_adolescent_phq9a_item9_and_screen() -> None:
    old, new = both(["adolescent"], patient={"age": 15})
    for d in (old, new):
        d.ok("measure_recorded", instrument="phq9a", score=19)
        d.ok("guardian_consent_recorded")
        d.ok("diagnosis_confirmed", diagnosis="major_depressive_disorder")
    old.ok("treatment_started")
    assert new.course.open_reviews == ["risk"]  # item 9 unknown
    assert new.rejected("guard_failed", "treatment_started").guards == ("suicide_screen",
                                                                        "no_open_review")
    new.ok("risk_assessed", level="low", safety_plan=True)
    new.ok("treatment_started")
    old.rejected("invalid_event", "measure_recorded", instrument="phq9a", score=4, item9=1)
    new.ok("measure_recorded", instrument="phq9a", score=4, item9=1)
    assert new.course.open_reviews == ["risk"]


def test_rule_adolescent_outcome_is_measured_on_phq9a() -> None:
    old, new = both(["adolescent"], patient={"age": 15})
    for d in (old, new):
        d.ok("measure_recorded", **phq9(20))
        d.ok("measure_recorded", **{**phq9(16), "instrument": "phq9a"})
        d.ok("measure_recorded", **phq9(10))
        d.ok("measure_recorded", **{**phq9(15), "instrument": "phq9a"})
    assert old.course.outcome.instrument == "phq9"
    assert (new.course.outcome.instrument, new.course.outcome.baseline) == ("phq9a", 16)


# --- bipolar -------------------------------------------------------------------------------------


def test_rule_bipolar_mania_flagged_opens_the_mania_review() -> None:
    old, new = both(["bipolar"])
    old.rejected("invalid_event", "mania_flagged", reason="pressured speech")
    new.rejected("invalid_event", "mania_flagged", reason="")
    new.ok("mania_flagged", reason="pressured speech")
    assert new.course.open_reviews == ["mania"]
    new.ok("measure_recorded", **phq9(16))
    new.ok("diagnosis_confirmed", diagnosis="bipolar_i")
    new.ok("pharmacotherapy_confirmed", medication="lithium")
    assert new.rejected("guard_failed", "treatment_started").guards == ("no_open_review",)
    new.ok("mania_assessed")
    new.ok("treatment_started")


def test_rule_bipolar_recurrence_in_preventive() -> None:
    d = Driver(protocol=V2, adaptations=["bipolar"])
    d.ok("measure_recorded", instrument="srm", score=3.0)
    d.ok("measure_recorded", **phq9(18))
    d.ok("diagnosis_confirmed", diagnosis="bipolar_ii")
    d.ok("pharmacotherapy_confirmed", medication="lithium")
    d.ok("treatment_started")
    d.sessions(3)
    d.initial_tasks(planned=12)
    d.ok("middle_phase_started")
    d.ok("measure_recorded", **phq9(8))
    d.sessions(5)
    d.ok("preventive_phase_started")
    d.ok("measure_recorded", **phq9(10))
    d.ok("measure_recorded", **phq9(12))
    assert codes(d) == ["recurrence"]


# --- bulimia -------------------------------------------------------------------------------------


def bulimia_start(d: Driver, diagnosis: str = "bulimia_nervosa") -> None:
    d.ok("measure_recorded", instrument="binge_episodes", score=12)
    d.ok("measure_recorded", **phq9(14))
    d.ok("diagnosis_confirmed", diagnosis=diagnosis)
    d.ok("medical_clearance_recorded")


def test_rule_bulimia_binge_episodes_are_the_primary_outcome() -> None:
    old, new = both(["bulimia"])
    for d in (old, new):
        bulimia_start(d)
    old.rejected("invalid_event", "measure_recorded", instrument="compensatory_episodes", score=0)
    new.ok("measure_recorded", instrument="compensatory_episodes", score=3)
    for d in (old, new):
        d.ok("treatment_started")
        d.ok("measure_recorded", instrument="binge_episodes", score=0)
        d.ok("measure_recorded", **phq9(13))
    assert (old.course.outcome.instrument, old.course.outcome.status) == ("phq9", "non_response")
    assert (new.course.outcome.instrument, new.course.outcome.status) == ("binge_episodes",
                                                                          "response")
    new.ok("measure_recorded", instrument="compensatory_episodes", score=0)
    assert new.course.outcome.status == "remission"


def test_rule_bulimia_can_start_without_a_depression_baseline() -> None:
    old, new = both(["bulimia"])
    for d in (old, new):
        d.ok("measure_recorded", instrument="binge_episodes", score=12)
        d.ok("risk_flagged", reason="screen")
        d.ok("risk_assessed", level="low", safety_plan=True)
        d.ok("diagnosis_confirmed", diagnosis="binge_eating_disorder")
        d.ok("medical_clearance_recorded")
    assert old.rejected("guard_failed", "treatment_started").guards == ("baseline_recorded",)
    new.ok("treatment_started")
    new.ok("measure_recorded", instrument="binge_episodes", score=0)
    assert new.course.outcome.status == "remission"  # binge-eating disorder: no compensatory rule


def test_rule_bulimia_group_route_needs_the_suicide_screen() -> None:
    d = Driver(protocol=V2, adaptations=["bulimia"], format="group")
    d.ok("measure_recorded", instrument="binge_episodes", score=12)
    d.ok("diagnosis_confirmed", diagnosis="bulimia_nervosa")
    d.ok("medical_clearance_recorded")
    assert "suicide_screen" in d.rejected("guard_failed", "treatment_started").guards
    d.ok("measure_recorded", instrument="phq9", score=0)
    d.ok("treatment_started")
    assert d.course.state == "pre_group"


# --- ptsd ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("technique,excluded", [
    ("exposure", True), ("Imaginal Exposure", True), ("in-vivo exposure", True),
    ("PROLONGED_EXPOSURE", True), ("written exposure", True), ("narrative-exposure", True),
    ("trauma_exposure_history", False), ("exposure therapy", False), ("role_play", False),
])
def test_rule_ptsd_excluded_technique_is_a_deviation_not_a_rejection(
    technique: str, excluded: bool
) -> None:
    old, new = both(["ptsd"])
    for d in (old, new):
        d.ok("measure_recorded", instrument="caps5", score=40)
        d.ok("risk_flagged", reason="screen")
        d.ok("risk_assessed", level="low", safety_plan=True)
        d.ok("diagnosis_confirmed", diagnosis="ptsd")
        d.ok("treatment_started")
    result = new.ok("session_held", techniques=[technique])
    assert [x.code for x in result.deviations] == (["excluded_technique"] if excluded else [])
    if technique == "exposure":
        old.rejected("guard_failed", "session_held", techniques=[technique])
    else:  # 1.0.0 only ever rejected the exact string "exposure"
        assert old.ok("session_held", techniques=[technique]).deviations == ()


def test_rule_ptsd_outcome_on_caps5_and_either_scale_completes() -> None:
    old, new = both(["ptsd"])
    for d in (old, new):
        d.ok("measure_recorded", **phq9(15))
        d.ok("measure_recorded", instrument="caps5", score=50)
        d.ok("measure_recorded", instrument="pcl5", score=60)
        d.ok("diagnosis_confirmed", diagnosis="ptsd")
        d.ok("treatment_started")
        d.ok("measure_recorded", instrument="caps5", score=30)
        d.ok("measure_recorded", **phq9(12))
    assert old.course.outcome.instrument == "phq9"
    assert (new.course.outcome.instrument, new.course.outcome.status) == ("caps5", "response")
    d = new
    d.sessions(1)
    d.ok("affect_attunement_introduced")
    d.initial_tasks(planned=14)
    d.ok("middle_phase_started")
    d.sessions(9)
    d.ok("termination_started")
    d.sessions(2)
    d.ok("progress_reviewed")
    d.ok("relapse_plan_recorded", warning_signs=["nightmares return"])
    d.ok("ending_discussed")
    assert d.rejected("guard_failed", "course_completed").guards == ("termination_measure",)
    d.ok("measure_recorded", instrument="pcl5", score=40)  # pcl5 counts for a caps5 outcome
    d.ok("course_completed")


def test_report_counts_the_outcome_instrument(tmp_path) -> None:
    d = Driver("r-ptsd", protocol=V2, adaptations=["ptsd"])
    d.ok("measure_recorded", instrument="phq9", score=15, item9=0)
    d.ok("measure_recorded", instrument="caps5", score=50)
    d.ok("diagnosis_confirmed", diagnosis="ptsd")
    d.ok("treatment_started")
    d.ok("measure_recorded", instrument="caps5", score=30)
    with Store.open(tmp_path / "r.db") as store:
        store.import_many([d.course])
        report = build_report(store)
    assert report["outcome_instruments"] == {"ipt-depression+ptsd": {"caps5": 1}}
    assert report["outcomes"] == {"ipt-depression+ptsd": {"response": 1}}
