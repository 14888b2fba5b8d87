"""IPSRT (SPEC §4 "bipolar"): the preventive state, the mania review, YMRS and SRM."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from iptflow import Course, default_registry
from iptflow.engine.replay import replay_file

COURSES = Path(__file__).parent / "courses" / "bipolar"
AT = "2025-01-06T09:00:00Z"


def course() -> Course:
    return Course.open({"type": "course_opened", "at": AT, "course_id": "b-1",
                        "protocol": "ipt-depression@1.0.0", "adaptations": ["bipolar"]})


def measure(instrument: str, score: Any, items: list[int] | None = None) -> dict[str, Any]:
    event = {"type": "measure_recorded", "at": AT, "instrument": instrument, "score": score}
    if items is not None:
        event["items"] = items
    return event


@pytest.mark.parametrize("path", sorted(COURSES.glob("*.jsonl")), ids=lambda p: p.name)
def test_course_file(path: Path) -> None:
    result = replay_file(path)
    assert (result.exit_status, result.expectations_failed) == (0, [])


def test_resolved_settings() -> None:
    p = default_registry().resolve("ipt-depression@1.0.0", ["bipolar"])
    assert p.indications == ["bipolar_i", "bipolar_ii"]
    assert (p.session_range.min, p.session_range.max) == (12, 20)
    assert "grief_for_lost_healthy_self" in p.problem_areas
    assert p.acute_states == ["initial", "middle", "termination"]
    assert p.state_def("preventive").added_by == "bipolar"


def test_preventive_rules_mirror_termination_and_its_sessions_are_uncapped() -> None:
    compiled = default_registry().compile("ipt-depression@1.0.0", ["bipolar"])

    def requires(state: str, event: str) -> list[str]:
        (route,) = compiled.allowed[state][event]
        return [r.name for r in route.requires]

    assert requires("middle", "preventive_phase_started") == requires("middle", "termination_started")
    assert requires("preventive", "termination_started") == ["no_open_review"]
    assert requires("preventive", "session_held") == ["session_number_next"]


@pytest.mark.parametrize("score, opens", [(11, ()), (12, ("mania",)), (30, ("mania",))])
def test_ymrs_of_12_or_more_opens_the_mania_review(score: int, opens: tuple[str, ...]) -> None:
    result = course().apply(measure("ymrs", score))
    assert result.ok and result.opened_reviews == opens


@pytest.mark.parametrize(
    "items, ok",
    [
        ([0, 0, 0, 0, 8, 8, 0, 8, 8, 0, 0], True),     # items 5, 6, 8, 9 go up to 8
        ([0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0], False),    # item 7 is 0-4
        ([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5], False),    # item 11 is 0-4
        ([0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0], False),    # item 5 is 0-8
    ],
)
def test_ymrs_item_ranges(items: list[int], ok: bool) -> None:
    result = course().apply(measure("ymrs", sum(items), items))
    assert result.ok is ok
    if not ok:
        assert result.code == "invalid_event"


def test_ymrs_total_range_and_srm_decimals() -> None:
    c = course()
    assert c.apply(measure("ymrs", 61)).code == "invalid_event"
    assert c.apply(measure("srm", 0.0)).ok and c.apply(measure("srm", 7.0)).ok
    assert c.apply(measure("srm", 7.01)).code == "invalid_event"
    assert c.apply(measure("srm", 3, [1, 2])).code == "invalid_event"   # srm has no items


def test_mania_review_blocks_phase_advance_like_risk() -> None:
    c = course()
    c.apply(measure("phq9", 15))
    c.apply({"type": "diagnosis_confirmed", "at": AT, "diagnosis": "bipolar_i"})
    c.apply({"type": "pharmacotherapy_confirmed", "at": AT, "medication": "lithium"})
    c.apply(measure("ymrs", 20))
    blocked = c.apply({"type": "treatment_started", "at": AT})
    assert (blocked.code, blocked.guards) == ("guard_failed", ("no_open_review",))
    assert "mania review" in blocked.message
    assert c.apply({"type": "mania_assessed", "at": AT}).closed_reviews == ("mania",)
    assert c.apply({"type": "treatment_started", "at": AT}).state == "initial"
    assert c.facts.records["medication"] == "lithium"
