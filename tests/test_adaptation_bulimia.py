"""IPT for bulimia nervosa and binge-eating disorder (SPEC §4 "bulimia")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from iptflow import Course, default_registry
from iptflow.engine.replay import replay_file

COURSES = Path(__file__).parent / "courses" / "bulimia"
AT = "2025-01-06T09:00:00Z"


def ready(fmt: str, adaptations: list[str]) -> Course:
    c = Course.open({"type": "course_opened", "at": AT, "course_id": "e-1", "format": fmt,
                     "protocol": "ipt-depression@1.0.0", "adaptations": adaptations})
    for event in (
        {"type": "measure_recorded", "instrument": "phq9", "score": 14},
        {"type": "diagnosis_confirmed", "diagnosis": "binge_eating_disorder"},
        {"type": "medical_clearance_recorded"},
    ):
        assert c.apply({"at": AT, **event}).ok
    return c


@pytest.mark.parametrize("path", sorted(COURSES.glob("*.jsonl")), ids=lambda p: p.name)
def test_course_file(path: Path) -> None:
    result = replay_file(path)
    assert (result.exit_status, result.expectations_failed) == (0, [])


def test_resolved_settings() -> None:
    p = default_registry().resolve("ipt-depression@1.0.0", ["bulimia"])
    assert p.indications == ["bulimia_nervosa", "binge_eating_disorder"]
    assert (p.session_range.min, p.session_range.max) == (15, 20)
    assert p.formats == ["individual", "group"]
    assert {"ede_q", "binge_episodes"} <= set(p.instruments)
    assert not {"ede_q", "binge_episodes"} & set(p.primary_instruments)


@pytest.mark.parametrize("fmt, dest", [("group", "pre_group"), ("individual", "initial")])
def test_treatment_started_is_routed_by_format(fmt: str, dest: str) -> None:
    assert ready(fmt, ["bulimia"]).apply({"type": "treatment_started", "at": AT}).state == dest


def test_group_route_is_tried_first_and_carries_every_requirement() -> None:
    compiled = default_registry().compile("ipt-depression@1.0.0", ["bulimia"])
    group, plain = compiled.allowed["assessment"]["treatment_started"]
    assert (group.when, group.dest, plain.when, plain.dest) == (
        (("format", "group"),), "pre_group", (), "initial")
    assert [r.name for r in group.requires] == [r.name for r in plain.requires]
    assert "medical_clearance" in [r.name for r in group.requires]


def test_group_format_also_works_with_another_adaptation() -> None:
    c = ready("group", ["bulimia", "bipolar"])
    c.apply({"type": "diagnosis_confirmed", "at": AT, "diagnosis": "bipolar_ii"})
    c.apply({"type": "pharmacotherapy_confirmed", "at": AT, "medication": "lamotrigine"})
    assert c.apply({"type": "treatment_started", "at": AT}).state == "pre_group"
    assert c.apply({"type": "pre_group_meeting_held", "at": AT}).ok
    assert c.apply({"type": "group_started", "at": AT}).state == "initial"


def test_group_events_are_not_allowed_without_group_format() -> None:
    c = ready("individual", ["bulimia"])
    for etype in ("pre_group_meeting_held", "group_started"):
        assert c.apply({"type": etype, "at": AT}).code == "not_allowed"
    c.apply({"type": "treatment_started", "at": AT})
    assert c.apply({"type": "group_started", "at": AT}).code == "not_allowed"


@pytest.mark.parametrize("score, ok", [(0, True), (250, True), (-1, False), (1.5, False)])
def test_binge_episodes_is_a_non_negative_count(score: Any, ok: bool) -> None:
    c = ready("individual", ["bulimia"])
    result = c.apply({"type": "measure_recorded", "at": AT, "instrument": "binge_episodes",
                      "score": score})
    assert result.ok is ok
