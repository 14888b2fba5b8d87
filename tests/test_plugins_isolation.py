"""Failure isolation: a plugin that raises inside a hook yields a PluginError naming the plugin
and the hook, and the course is exactly as before (SPEC: a rejected event changes nothing)."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, Literal

import pytest

import iptflow
from iptflow import Course, PluginError, Registry
from iptflow.engine.events import Event, EventType
from iptflow.engine.plugins import make_plugin_manager

AT = "2025-01-06T09:00:00Z"
LATER = "2025-01-06T10:00:00Z"


def registry_with(name: str, **hooks: Callable[..., Any]) -> Registry:
    plugin = SimpleNamespace(**{k: iptflow.hookimpl(v) for k, v in hooks.items()})
    pm, _ = make_plugin_manager(entry_points_too=False, extra={name: plugin})
    return Registry(pm)


def opened(**extra: Any) -> dict[str, Any]:
    return {"type": "course_opened", "at": AT, "course_id": "c-1", "protocol": "ipt-depression@1.0.0",
            **extra}


def phq9(score: int = 12) -> dict[str, Any]:
    return {"type": "measure_recorded", "at": LATER, "instrument": "phq9", "score": score}


def boom(*args: Any, **kwargs: Any) -> None:
    raise RuntimeError("boom")


@pytest.mark.parametrize(
    "hook",
    ["register_guards", "register_deviation_checks", "register_events",
     "register_adaptations", "register_protocols"],
)
def test_registration_hook_that_raises_names_plugin_and_hook(hook: str) -> None:
    with pytest.raises(PluginError) as info:
        registry_with("broken-plugin", **{hook: boom})
    assert info.value.plugin == "broken-plugin"
    assert info.value.hook == hook
    assert "broken-plugin" in str(info.value) and hook in str(info.value)


def test_register_adaptations_with_a_broken_file_names_plugin(tmp_path: Any) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('id = "bad"\ntitle = "Bad"\nsession_rnage = { min = 1, max = 2 }\n')

    def register_adaptations(register: Callable[..., None]) -> None:
        register(iptflow.load_adaptation(bad))

    with pytest.raises(PluginError) as info:
        registry_with("bad-data", register_adaptations=register_adaptations)
    assert info.value.plugin == "bad-data"
    assert info.value.hook == "register_adaptations"
    assert "session_rnage" in str(info.value) and "bad.toml:3" in str(info.value)


def test_misspelled_hook_is_caught_by_check_pending() -> None:
    plugin = SimpleNamespace(register_adaptation=iptflow.hookimpl(boom))
    with pytest.raises(PluginError) as info:
        make_plugin_manager(entry_points_too=False, extra={"typo-plugin": plugin})
    assert info.value.plugin == "typo-plugin"
    assert "register_adaptation" in str(info.value)


class Flaky(Event):
    type: Literal["flaky_recorded"]


def _flaky_registry(**event_kwargs: Any) -> Registry:
    def register_events(register: Callable[..., None]) -> None:
        register(EventType("flaky_recorded", Flaky, **event_kwargs))

    def register_adaptations(register: Callable[..., None]) -> None:
        register(iptflow.AdaptationDef.model_validate({
            "id": "flaky", "title": "Flaky",
            "transitions": [{"event": "flaky_recorded", "source": "*"}],
        }))

    return registry_with("flaky-plugin", register_events=register_events,
                         register_adaptations=register_adaptations)


def test_effect_that_raises_leaves_course_unchanged() -> None:
    registry = _flaky_registry(effect=boom)
    course = Course.open(opened(adaptations=["flaky"]), registry)
    course.apply(phq9())
    before = course.snapshot()
    with pytest.raises(PluginError) as info:
        course.apply({"type": "flaky_recorded", "at": LATER})
    assert info.value.plugin == "flaky-plugin"
    assert info.value.hook == "register_events"
    assert "flaky_recorded" in str(info.value)
    assert course.snapshot() == before
    assert len(course.history) == 2
    assert course.apply(phq9(10)).ok   # the course goes on


def test_check_that_raises_names_plugin_and_changes_nothing() -> None:
    registry = _flaky_registry(check=boom)
    course = Course.open(opened(adaptations=["flaky"]), registry)
    before = course.snapshot()
    with pytest.raises(PluginError) as info:
        course.apply({"type": "flaky_recorded", "at": LATER})
    assert (info.value.plugin, info.value.hook) == ("flaky-plugin", "register_events")
    assert course.snapshot() == before


def test_guard_that_raises_names_plugin_and_changes_nothing() -> None:
    def register_guards(register: Callable[..., None]) -> None:
        register("always_raises", boom)

    def register_adaptations(register: Callable[..., None]) -> None:
        register(iptflow.AdaptationDef.model_validate({
            "id": "strict", "title": "Strict",
            "requirements": {"odd_rule": {"guard": "always_raises"}},
            "extra_requires": [{"event": "measure_recorded", "source": "*", "requires": ["odd_rule"]}],
        }))

    registry = registry_with("guard-plugin", register_guards=register_guards,
                             register_adaptations=register_adaptations)
    course = Course.open(opened(adaptations=["strict"]), registry)
    before = course.snapshot()
    with pytest.raises(PluginError) as info:
        course.apply(phq9())
    assert (info.value.plugin, info.value.hook) == ("guard-plugin", "register_guards")
    assert "always_raises" in str(info.value)
    assert course.snapshot() == before


def test_deviation_check_that_raises_changes_nothing() -> None:
    def register_deviation_checks(register: Callable[..., None]) -> None:
        register("explodes", boom)

    def register_adaptations(register: Callable[..., None]) -> None:
        register(iptflow.AdaptationDef.model_validate({
            "id": "audited", "title": "Audited",
            "deviations": [{"code": "odd", "check": "explodes"}],
        }))

    registry = registry_with("check-plugin", register_deviation_checks=register_deviation_checks,
                             register_adaptations=register_adaptations)
    course = Course.open(opened(adaptations=["audited"]), registry)
    before = course.snapshot()
    with pytest.raises(PluginError) as info:
        course.apply(phq9())
    assert (info.value.plugin, info.value.hook) == ("check-plugin", "register_deviation_checks")
    assert course.snapshot() == before


def test_event_accepted_observer_that_raises_undoes_the_event() -> None:
    registry = registry_with("audit-plugin", event_accepted=lambda course, event, result: (
        boom() if event.type == "measure_recorded" else None))
    course = Course.open(opened(), registry)
    before = course.snapshot()
    with pytest.raises(PluginError) as info:
        course.apply(phq9())
    assert (info.value.plugin, info.value.hook) == ("audit-plugin", "event_accepted")
    assert course.snapshot() == before
    assert len(course.history) == 1


def test_state_changed_observer_that_raises_undoes_the_transition() -> None:
    registry = registry_with("notify-plugin", state_changed=lambda course, source, dest, event_type:
                             boom())
    course = Course.open(opened(), registry)
    for raw in (phq9(15), {"type": "diagnosis_confirmed", "at": LATER,
                           "diagnosis": "major_depressive_disorder"}):
        assert course.apply(raw).ok
    before = course.snapshot()
    with pytest.raises(PluginError) as info:
        course.apply({"type": "treatment_started", "at": LATER})
    assert (info.value.plugin, info.value.hook) == ("notify-plugin", "state_changed")
    assert course.snapshot() == before
    assert course.state == "assessment"


def test_observers_see_accepted_events_and_transitions() -> None:
    seen: list[tuple[str, ...]] = []
    registry = registry_with(
        "recorder",
        event_accepted=lambda course, event, result: seen.append(("event", event.type, result.state)),
        state_changed=lambda course, source, dest, event_type: seen.append(
            ("state", source, dest, event_type)),
    )
    course = Course.open(opened(), registry)
    course.apply(phq9(15))
    course.apply({"type": "treatment_started", "at": LATER})   # rejected: not observed
    course.apply({"type": "diagnosis_confirmed", "at": LATER, "diagnosis": "major_depressive_disorder"})
    course.apply({"type": "treatment_started", "at": LATER})
    assert seen == [
        ("event", "course_opened", "assessment"),
        ("event", "measure_recorded", "assessment"),
        ("event", "diagnosis_confirmed", "assessment"),
        ("state", "assessment", "initial", "treatment_started"),
        ("event", "treatment_started", "initial"),
    ]
