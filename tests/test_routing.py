"""Routed transitions (``when``): the first route whose conditions the course meets is taken;
an event whose every route is conditional and unmet is not allowed for that course."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import iptflow
from iptflow import Course, Registry
from iptflow.engine.plugins import make_plugin_manager

AT = "2025-01-06T09:00:00Z"
LATER = "2025-01-06T10:00:00Z"


def _registry() -> Registry:
    def register_adaptations(register: Callable[..., None]) -> None:
        register(iptflow.AdaptationDef.model_validate({
            "id": "early-sick-role", "title": "Sick role in assessment, group courses only",
            "formats": ["group"],
            "transitions": [
                {"event": "sick_role_given", "source": ["assessment"], "when": {"format": "group"}},
            ],
        }))

    plugin = SimpleNamespace(register_adaptations=iptflow.hookimpl(register_adaptations))
    pm, _ = make_plugin_manager(entry_points_too=False, extra={"routing-test": plugin})
    return Registry(pm)


def _open(registry: Registry, fmt: str) -> Course:
    return Course.open({"type": "course_opened", "at": AT, "course_id": f"c-{fmt}",
                        "protocol": "ipt-depression", "adaptations": ["early-sick-role"],
                        "format": fmt}, registry)


def test_conditional_route_is_taken_when_the_course_meets_it() -> None:
    course = _open(_registry(), "group")
    result = course.apply({"type": "sick_role_given", "at": LATER})
    assert result.ok and course.state == "assessment"
    assert "sick_role_given" in course.facts.tasks


def test_event_with_only_unmet_conditional_routes_is_not_allowed_and_changes_nothing() -> None:
    course = _open(_registry(), "individual")
    before = course.snapshot()
    result = course.apply({"type": "sick_role_given", "at": LATER})
    assert result.code == "not_allowed"
    assert "format group" in result.message
    assert course.snapshot() == before
    assert course.unmet_requirements("sick_role_given") == []


def test_try_open_with_a_non_object_is_no_course() -> None:
    course, result = Course.try_open(["not", "an", "object"])  # type: ignore[arg-type]
    assert course is None
    assert result.code == "no_course"


def test_generated_coverage_takes_a_route_only_group_courses_have() -> None:
    from iptflow.research.generate import cover_transitions

    compiled = _registry().compile("ipt-depression", ["early-sick-role"])
    courses, uncovered, _ = cover_transitions(compiled)
    assert ("assessment", "sick_role_given", 0) not in uncovered
    assert uncovered == []
    assert any('"sick_role_given"' in c.text() and '"group"' in c.text() for c in courses)
