"""Routed transitions (``when``): the first route whose conditions the course meets is taken;
an event whose every route is conditional and unmet is not allowed for that course."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import pytest

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
                        "protocol": "ipt-depression@1.0.0", "adaptations": ["early-sick-role"],
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
    assert course.unmet_requirements("sick_role_given") == [("not_allowed", result.message)]


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


# -- one routing decision ---------------------------------------------------------------------

COMBINATIONS = [[], ["adolescent"], ["bipolar"], ["bulimia"], ["ptsd"], ["bipolar", "bulimia"]]


def _bulimia_ready(registry: Registry, fmt: str) -> Course:
    course = Course.open({"type": "course_opened", "at": AT, "course_id": f"b-{fmt}", "format": fmt,
                          "protocol": "ipt-depression", "adaptations": ["bulimia"]}, registry)
    for event in ({"type": "measure_recorded", "instrument": "phq9", "score": 14, "item9": 0},
                  {"type": "diagnosis_confirmed", "diagnosis": "binge_eating_disorder"},
                  {"type": "medical_clearance_recorded"}):
        assert course.apply({"at": AT, **event}).ok
    return course


def test_the_machine_holds_one_unconditional_transition_per_state_changing_route() -> None:
    registry = iptflow.default_registry()
    for adaptations in COMBINATIONS:
        compiled = registry.compile("ipt-depression", adaptations)
        machine_transitions = [t for event in compiled.machine.events.values()
                               for ts in event.transitions.values() for t in ts]
        assert all(not t.conditions for t in machine_transitions)
        routed = [(state, event, route) for state, events in compiled.allowed.items()
                  for event, routes in events.items() for route in routes]
        with_dest = [(s, e, r) for s, e, r in routed if r.dest is not None]
        assert sorted(map(id, machine_transitions)) == sorted(id(r.transition) for _, _, r in with_dest)
        for state, event, route in with_dest:
            assert route.transition in compiled.machine.events[event].transitions[state]
            assert (route.transition.source, route.transition.dest) == (state, route.dest)
        assert all(r.transition is None for _, _, r in routed if r.dest is None)


@pytest.mark.parametrize("fmt, dest", [("group", "pre_group"), ("individual", "initial")])
def test_a_course_goes_where_the_one_routing_decision_says(fmt: str, dest: str) -> None:
    changes: list[tuple[str, str, str]] = []

    def state_changed(course: Course, source: str, dest: str, event_type: str) -> None:
        changes.append((source, dest, event_type))

    plugin = SimpleNamespace(state_changed=iptflow.hookimpl(state_changed))
    pm, _ = make_plugin_manager(extra={"routing-watch": plugin})
    registry = Registry(pm)
    course = _bulimia_ready(registry, fmt)
    route = course.compiled.route(course.state, "treatment_started", course.facts)
    assert route is not None and route.dest == dest
    assert course.unmet_requirements("treatment_started") == []
    result = course.apply({"type": "treatment_started", "at": LATER})
    assert result.ok and course.state == dest == result.state
    assert changes == [("assessment", dest, "treatment_started")]  # notified once


@pytest.mark.parametrize("adaptations", COMBINATIONS, ids=lambda a: "+".join(a) or "base")
def test_generate_routes_every_event_as_the_engine_does(adaptations: list[str]) -> None:
    from iptflow.engine.facts import Facts
    from iptflow.research.generate import effective_route

    compiled = iptflow.default_registry().compile("ipt-depression", adaptations)
    for fmt in ("individual", "group"):
        facts = Facts(course_id="c", format=fmt)
        for state in compiled.protocol.states:
            for event in compiled.event_types:
                route = compiled.route(state.name, event, facts)
                index = effective_route(compiled, {"format": fmt}, state.name, event)
                if route is None:
                    assert index is None, (state.name, event, fmt)
                else:
                    assert compiled.allowed[state.name][event][index] is route, (state.name, event)
