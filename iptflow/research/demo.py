"""The demo course: a complete 12-session course of standard IPT (protocol 2.0.0) ending in
remission, with a safety path: item 9 of the first PHQ-9 is above 0, which opens the suicide
risk review; it is assessed with a safety plan and treatment goes on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

START = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)


def _at(days: float, hours: float = 0) -> str:
    return (START + timedelta(days=days, hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _phq9(score_items: list[int]) -> dict[str, Any]:
    return {"instrument": "phq9", "score": sum(score_items), "items": score_items}


def demo_events(course_id: str = "demo-001") -> list[dict[str, Any]]:
    """Events of a 12-session course: assessment (with a risk review), 3 initial, 7 middle,
    2 termination."""
    clinician = "clinician-7"
    ev: list[dict[str, Any]] = [
        {"type": "course_opened", "at": _at(0), "course_id": course_id,
         "protocol": "ipt-depression", "actor": clinician},
        {"type": "measure_recorded", "at": _at(0, 1), **_phq9([2, 2, 2, 2, 2, 2, 2, 2, 1])},
        {"type": "risk_assessed", "at": _at(0, 1.5), "level": "moderate", "safety_plan": True},
        {"type": "diagnosis_confirmed", "at": _at(0, 1.5), "diagnosis": "major_depressive_disorder"},
        {"type": "treatment_started", "at": _at(0, 2)},
    ]
    week = 7
    session = 0

    def held(day: float, **extra: Any) -> dict[str, Any]:
        nonlocal session
        session += 1
        return {"type": "session_held", "at": _at(day), "number": session, **extra}

    ev += [
        held(week * 1),
        {"type": "sick_role_given", "at": _at(week * 1, 1)},
        held(week * 2),
        {"type": "interpersonal_inventory_completed", "at": _at(week * 2, 1)},
        held(week * 3),
        {"type": "problem_area_selected", "at": _at(week * 3, 1), "area": "role_transition"},
        {"type": "formulation_agreed", "at": _at(week * 3, 1), "planned_sessions": 12},
        {"type": "measure_recorded", "at": _at(week * 3, 1), **_phq9([2, 2, 2, 1, 2, 1, 2, 2, 0])},
        {"type": "middle_phase_started", "at": _at(week * 3, 2)},
    ]
    scores = {6: [1, 1, 2, 1, 1, 1, 1, 1, 0], 8: [1, 1, 1, 1, 1, 1, 1, 0, 0],
              10: [1, 0, 1, 1, 0, 1, 0, 0, 0]}
    for n in range(4, 11):
        ev.append(held(week * n, techniques=["role_play", "communication_analysis"]))
        if n in scores:
            ev.append({"type": "measure_recorded", "at": _at(week * n, 1), **_phq9(scores[n])})
    ev += [
        {"type": "termination_started", "at": _at(week * 10, 2)},
        held(week * 11),
        {"type": "progress_reviewed", "at": _at(week * 11, 1)},
        {"type": "ending_discussed", "at": _at(week * 11, 1)},
        held(week * 12),
        {"type": "relapse_plan_recorded", "at": _at(week * 12, 1),
         "warning_signs": ["withdrawing from friends", "early waking", "skipping meals"]},
        {"type": "measure_recorded", "at": _at(week * 12, 1), **_phq9([1, 0, 1, 0, 0, 1, 0, 0, 0])},
        {"type": "course_completed", "at": _at(week * 12, 2)},
    ]
    return ev
