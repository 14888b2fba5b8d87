"""Tests of a downstream project using iptflow's fixtures."""

from pathlib import Path

HERE = Path(__file__).parent


def test_contract_outside_the_variants_range_is_rejected(make_course):
    course = make_course(
        "ipt-brief",
        events=[
            {"type": "measure_recorded", "at": "2025-03-03T09:30:00Z", "instrument": "phq9", "score": 16},
            {"type": "diagnosis_confirmed", "at": "2025-03-03T09:40:00Z",
             "diagnosis": "major_depressive_disorder"},
            {"type": "treatment_started", "at": "2025-03-03T10:00:00Z"},
            {"type": "problem_area_selected", "at": "2025-03-03T10:10:00Z", "area": "grief"},
        ],
    )
    result = course.apply({"type": "formulation_agreed", "at": "2025-03-03T10:20:00Z",
                           "planned_sessions": 12})
    assert result.code == "guard_failed"
    assert result.guards == ("planned_sessions_in_range",)


def test_replay_a_course_file(replay_course):
    result = replay_course(HERE / "courses" / "brief-contract.course.jsonl")
    assert result.state == "middle"
    assert result.exit_status == 0


def test_courses_are_kept_in_a_store(iptflow_store, make_course):
    opened = {"type": "course_opened", "at": "2025-03-03T09:00:00Z", "course_id": "s-1",
              "protocol": "ipt-depression"}
    assert iptflow_store.open_course(opened).ok
    assert iptflow_store.get("s-1").state == "assessment"
