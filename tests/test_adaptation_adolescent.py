"""IPT-A (SPEC §4 "adolescent"): rules the course files do not pin down at their edges."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from iptflow import Course, ProtocolConflict, default_registry
from iptflow.engine.replay import replay_file

COURSES = Path(__file__).parent / "courses" / "adolescent"
AT = "2025-01-06T09:00:00Z"


def opened(**extra: Any) -> dict[str, Any]:
    return {"type": "course_opened", "at": AT, "course_id": "a-1", "protocol": "ipt-depression@1.0.0",
            "adaptations": ["adolescent"], **extra}


@pytest.mark.parametrize("path", sorted(COURSES.glob("*.jsonl")), ids=lambda p: p.name)
def test_course_file(path: Path) -> None:
    result = replay_file(path)
    assert (result.exit_status, result.expectations_failed) == (0, [])


@pytest.mark.parametrize("age", [12, 18])
def test_ages_12_to_18_may_open(age: int) -> None:
    course, result = Course.try_open(opened(patient={"age": age}))
    assert result.ok and course is not None and course.facts.patient_age == age


@pytest.mark.parametrize("patient", [{"age": 11}, {"age": 19}, {}, None])
def test_other_or_missing_ages_are_guard_failed(patient: dict[str, Any] | None) -> None:
    course, result = Course.try_open(opened(patient=patient))
    assert course is None
    assert (result.code, result.guards) == ("guard_failed", ("adolescent_age",))


def test_resolved_settings() -> None:
    p = default_registry().resolve("ipt-depression@1.0.0", ["adolescent"])
    assert (p.session_range.min, p.session_range.max, p.review_session) == (12, 12, 4)
    assert p.primary_instruments == ["phq9", "hamd17", "phq9a"]
    assert p.indications == ["major_depressive_disorder"]


def test_completion_and_maintenance_both_need_a_parent_session_in_termination() -> None:
    p = default_registry().resolve("ipt-depression@1.0.0", ["adolescent"])
    for t in p.transitions:
        if t.source == ["termination"] and t.event in ("course_completed", "maintenance_started"):
            assert "parent_session_in_termination" in t.requires
        if t.source == ["maintenance"] and t.event == "course_completed":
            assert "parent_session_in_termination" not in t.requires


def test_incompatible_with_bipolar_whatever_the_order() -> None:
    for names in (["adolescent", "bipolar"], ["bipolar", "adolescent"]):
        with pytest.raises(ProtocolConflict, match="adolescent and bipolar cannot be combined"):
            default_registry().resolve("ipt-depression@1.0.0", names)


def test_phq9a_item_9_opens_the_risk_review() -> None:
    course = Course.open(opened(patient={"age": 14}))
    items = [0, 0, 0, 0, 0, 0, 0, 0, 1]
    result = course.apply({"type": "measure_recorded", "at": AT, "instrument": "phq9a",
                           "score": 1, "items": items})
    assert result.ok and result.opened_reviews == ("risk",)
