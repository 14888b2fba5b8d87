"""Plugin loading: entry points, the IPTFLOW_PLUGINS allow-list, ``iptflow plugins``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from click.testing import CliRunner

from iptflow import Registry, UnknownAdaptation
from iptflow.cli import cli
from iptflow.engine.hookspecs import HOOK_NAMES
from iptflow.engine.plugins import CORE_PLUGIN, ENTRY_POINT_GROUP, allowed_plugins, make_plugin_manager

BUILT_IN = {"adolescent", "bipolar", "bulimia", "ptsd"}


def test_built_in_adaptations_are_ordinary_entry_points() -> None:
    eps = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    assert {name: eps.get(name) for name in BUILT_IN} == {
        name: f"iptflow_plugins.{name}" for name in BUILT_IN
    }
    pm, info = make_plugin_manager()
    for name in BUILT_IN:
        assert pm.has_plugin(name)
        assert info[name].source.startswith("entry point of iptflow")
    assert info[CORE_PLUGIN].source == "core"


def test_register_adaptations_registers_each_adaptation_under_its_plugin() -> None:
    registry = Registry(make_plugin_manager()[0])
    assert {aid: plugin for aid, (_, plugin) in registry.adaptations.items()
            if aid in BUILT_IN} == {name: name for name in BUILT_IN}


def test_allow_list_restricts_installed_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IPTFLOW_PLUGINS", " ptsd , bulimia,")
    assert allowed_plugins() == {"ptsd", "bulimia"}
    pm, info = make_plugin_manager(allow=allowed_plugins())
    assert set(info) >= {CORE_PLUGIN, "ptsd", "bulimia"}
    assert not pm.has_plugin("adolescent") and not pm.has_plugin("bipolar")
    registry = Registry(pm)
    assert registry.resolve("ipt-depression", ["ptsd"]).session_range.max == 14
    with pytest.raises(UnknownAdaptation, match="unknown adaptation 'adolescent'"):
        registry.resolve("ipt-depression", ["adolescent"])


def test_empty_allow_list_loads_only_the_core(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IPTFLOW_PLUGINS", "")
    pm, info = make_plugin_manager(allow=allowed_plugins())
    assert list(info) == [CORE_PLUGIN]
    assert Registry(pm).adaptations == {}


def test_no_allow_list_loads_every_installed_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IPTFLOW_PLUGINS", raising=False)
    assert allowed_plugins() is None
    _, info = make_plugin_manager(allow=allowed_plugins())
    assert set(info) >= BUILT_IN


def test_plugins_json_lists_source_hooks_and_registrations() -> None:
    result = CliRunner().invoke(cli, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    listing = {item["name"]: item for item in json.loads(result.output)["plugins"]}
    bipolar = listing["bipolar"]
    assert bipolar["module"] == "iptflow_plugins.bipolar"
    assert bipolar["source"].startswith("entry point of iptflow")
    assert bipolar["hooks"] == ["agenda_items", "register_adaptations", "register_events"]
    assert bipolar["registers"] == {
        "adaptations": ["bipolar"],
        "events": ["mania_assessed", "mania_flagged", "pharmacotherapy_confirmed",
                   "preventive_phase_started"],
    }
    core = listing[CORE_PLUGIN]
    assert core["source"] == "core"
    assert set(core["hooks"]) < set(HOOK_NAMES)
    assert "patient_age_between" in core["registers"]["guards"]


def test_plugins_text_listing_names_each_plugin() -> None:
    result = CliRunner().invoke(cli, ["plugins"])
    assert result.exit_code == 0
    for name in BUILT_IN:
        assert f"{name} (iptflow_plugins.{name}; entry point of iptflow" in result.output
    assert "  adaptations: ptsd" in result.output


def test_plugins_command_honours_the_allow_list() -> None:
    env = dict(os.environ, IPTFLOW_PLUGINS="ptsd")
    proc = subprocess.run(
        [sys.executable, "-c", "from iptflow.cli import main; main()", "plugins", "--json"],
        env=env, capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert [p["name"] for p in json.loads(proc.stdout)["plugins"]] == [CORE_PLUGIN, "ptsd"]


def _plugin(**hooks: object) -> object:
    from types import SimpleNamespace

    import iptflow

    return SimpleNamespace(**{name: iptflow.hookimpl(fn) for name, fn in hooks.items()})


def test_register_protocols_accepts_models_variants_and_paths(tmp_path: Path) -> None:
    from iptflow.protocol.variants import VariantDef

    base_text = (Path(__file__).parent.parent / "protocols" / "ipt-depression" / "1.0.0.toml").read_text()
    path = tmp_path / "ipt-clinic.toml"
    path.write_text(base_text.replace('id = "ipt-depression"', 'id = "ipt-clinic"'))
    short = VariantDef(id="clinic-short", version="1", title="Short", extends="ipt-clinic",
                       session_range={"min": 10, "max": 10})

    def register_protocols(register: Callable[..., None]) -> None:
        register(path)
        register(short)

    pm, _ = make_plugin_manager(entry_points_too=False,
                                extra={"clinic": _plugin(register_protocols=register_protocols)})
    registry = Registry(pm)
    assert registry.sources[("protocol", "ipt-clinic")] == "clinic"
    resolved = registry.resolve("clinic-short")
    assert (resolved.base, resolved.session_range.max) == ("ipt-clinic@1.0.0", 10)


def test_register_protocols_rejects_a_duplicate_id() -> None:
    from iptflow import PluginError

    def register_protocols(register: Callable[..., None]) -> None:
        register(Registry(make_plugin_manager(entry_points_too=False)[0]).find("ipt-depression"))

    copycat = _plugin(register_protocols=register_protocols)
    pm, _ = make_plugin_manager(entry_points_too=False, extra={"copycat": copycat})
    duplicate = "'ipt-depression@2.0.0' is already registered by iptflow.builtins"
    with pytest.raises(PluginError, match=duplicate) as info:
        Registry(pm)
    assert (info.value.plugin, info.value.hook) == ("copycat", "register_protocols")


def test_register_deviation_checks_adds_a_check_protocol_data_can_name() -> None:
    from iptflow import AdaptationDef, Course

    def register_deviation_checks(register: Callable[..., None]) -> None:
        register("high_first_score", lambda course, event, above: (
            f"first score above {above}" if event.type == "measure_recorded"
            and not course.facts.measures and event.score > above else None))

    def register_adaptations(register: Callable[..., None]) -> None:
        register(AdaptationDef(id="watch", title="Watch", deviations=[
            {"code": "high_first_score", "check": "high_first_score", "params": {"above": 20}}]))

    plugin = _plugin(register_deviation_checks=register_deviation_checks,
                     register_adaptations=register_adaptations)
    registry = Registry(make_plugin_manager(entry_points_too=False, extra={"watch": plugin})[0])
    course = Course.open({"type": "course_opened", "at": "2025-01-06T09:00:00Z", "course_id": "w",
                          "protocol": "ipt-depression@1.0.0", "adaptations": ["watch"]}, registry)
    result = course.apply({"type": "measure_recorded", "at": "2025-01-06T09:00:00Z",
                           "instrument": "phq9", "score": 22})
    assert [d.code for d in result.deviations] == ["high_first_score"]


def test_register_events_adds_a_validated_event_model() -> None:
    from typing import Literal

    from pydantic import StrictStr

    from iptflow import AdaptationDef, Course
    from iptflow.engine.events import Event, EventType

    class SchoolContacted(Event):
        type: Literal["school_contacted"]
        school: StrictStr

    def register_events(register: Callable[..., None]) -> None:
        register(EventType("school_contacted", SchoolContacted,
                           effect=lambda course, event: course.facts.records.update(school=event.school)))

    def register_adaptations(register: Callable[..., None]) -> None:
        register(AdaptationDef(id="school", title="School liaison",
                               transitions=[{"event": "school_contacted", "source": "*"}]))

    plugin = _plugin(register_events=register_events, register_adaptations=register_adaptations)
    registry = Registry(make_plugin_manager(entry_points_too=False, extra={"school": plugin})[0])
    course = Course.open({"type": "course_opened", "at": "2025-01-06T09:00:00Z", "course_id": "s",
                          "protocol": "ipt-depression@1.0.0", "adaptations": ["school"]}, registry)
    bad = course.apply({"type": "school_contacted", "at": "2025-01-06T09:00:00Z", "school": 7})
    assert bad.code == "invalid_event" and "school" in bad.message
    assert course.apply({"type": "school_contacted", "at": "2025-01-06T09:00:00Z",
                         "school": "North High"}).ok
    assert course.facts.records["school"] == "North High"


def test_register_deviation_checks_with_events_is_called_only_for_those_events() -> None:
    from iptflow import AdaptationDef, Course

    seen: list[str] = []

    def count_sessions(course: object, event: object) -> str | None:
        seen.append(event.type)  # type: ignore[attr-defined]
        return "a session" if event.type == "session_held" else None  # type: ignore[attr-defined]

    def register_deviation_checks(register: Callable[..., None]) -> None:
        register("every_session", count_sessions, events=("session_held",))

    def register_adaptations(register: Callable[..., None]) -> None:
        register(AdaptationDef(id="tally", title="Tally", deviations=[
            {"code": "every_session", "check": "every_session"}]))

    plugin = _plugin(register_deviation_checks=register_deviation_checks,
                     register_adaptations=register_adaptations)
    registry = Registry(make_plugin_manager(entry_points_too=False, extra={"tally": plugin})[0])
    assert registry.check_events["every_session"] == frozenset({"session_held"})
    course = Course.open({"type": "course_opened", "at": "2025-01-06T09:00:00Z", "course_id": "t",
                          "protocol": "ipt-depression", "adaptations": ["tally"]}, registry)
    for event in [
        {"type": "measure_recorded", "instrument": "phq9", "score": 22, "item9": 0},
        {"type": "diagnosis_confirmed", "diagnosis": "major_depressive_disorder"},
        {"type": "treatment_started"},
        {"type": "session_held"},
        {"type": "session_missed"},
    ]:
        result = course.apply({"at": "2025-01-07T09:00:00Z", **event})
        assert result.ok, result
        codes = [d.code for d in result.deviations]
        assert codes == (["every_session"] if event["type"] == "session_held" else [])
    assert seen == ["session_held"]


def test_register_deviation_checks_without_events_sees_every_event() -> None:
    from iptflow import AdaptationDef, Course

    seen: list[str] = []

    def register_deviation_checks(register: Callable[..., None]) -> None:
        register("watch_all", lambda course, event: seen.append(event.type))

    def register_adaptations(register: Callable[..., None]) -> None:
        register(AdaptationDef(id="all", title="All", deviations=[
            {"code": "watch_all", "check": "watch_all"}]))

    plugin = _plugin(register_deviation_checks=register_deviation_checks,
                     register_adaptations=register_adaptations)
    registry = Registry(make_plugin_manager(entry_points_too=False, extra={"all": plugin})[0])
    assert registry.check_events["watch_all"] is None
    course = Course.open({"type": "course_opened", "at": "2025-01-06T09:00:00Z", "course_id": "a",
                          "protocol": "ipt-depression", "adaptations": ["all"]}, registry)
    course.apply({"type": "measure_recorded", "at": "2025-01-07T09:00:00Z", "instrument": "phq9",
                  "score": 22})
    course.apply({"type": "risk_flagged", "at": "2025-01-07T09:00:00Z", "reason": "test"})
    assert seen == ["measure_recorded", "risk_flagged"]


def test_register_deviation_checks_events_must_not_be_a_string() -> None:
    from iptflow import PluginError

    def register_deviation_checks(register: Callable[..., None]) -> None:
        register("typo", lambda course, event: None, events="session_held")

    plugin = _plugin(register_deviation_checks=register_deviation_checks)
    pm, _ = make_plugin_manager(entry_points_too=False, extra={"typo": plugin})
    with pytest.raises(PluginError, match="events must be a collection") as info:
        Registry(pm)
    assert (info.value.plugin, info.value.hook) == ("typo", "register_deviation_checks")


def test_core_checks_declare_their_events_through_the_hook_like_any_plugin() -> None:
    registry = Registry(make_plugin_manager(entry_points_too=False)[0])
    assert registry.check_events == {
        "long_initial_phase": frozenset({"middle_phase_started"}),
        "session_gap": frozenset({"session_held"}),
        "missed_sessions": frozenset({"session_missed"}),
        "non_response": frozenset({"session_held"}),
        # protocol 2.0.0's checks (excluded_technique is the ptsd adaptation's)
        "recurrence": frozenset({"measure_recorded"}),
        "no_safety_plan": frozenset({"risk_assessed"}),
        "closed_with_open_review": frozenset({"course_discontinued", "course_referred"}),
        "excluded_technique": frozenset({"session_held"}),
    }
    old = registry.compile("ipt-depression@1.0.0")
    assert {c.code: c.events for c in old.checks} == {
        code: registry.check_events[code]
        for code in ("long_initial_phase", "session_gap", "missed_sessions", "non_response")}
    assert [c.code for c in old.checks_for["measure_recorded"]] == []
    new = registry.compile("ipt-depression")
    assert [c.code for c in new.checks_for["measure_recorded"]] == ["recurrence"]


def test_every_hook_is_called_through_pluggy_one_plugin_at_a_time() -> None:
    from iptflow import Course

    calls: list[tuple[str, tuple[str, ...]]] = []

    def before(hook_name: str, hook_impls: list, kwargs: dict) -> None:
        calls.append((hook_name, tuple(impl.plugin_name for impl in hook_impls)))

    def after(outcome: object, hook_name: str, hook_impls: list, kwargs: dict) -> None:
        pass

    def register_guards(register: Callable[..., None]) -> None:
        register("never", lambda course, event: None)

    def state_changed(course: object, source: str, dest: str, event_type: str) -> None:
        pass

    plugin = _plugin(register_guards=register_guards, state_changed=state_changed)
    pm, _ = make_plugin_manager(entry_points_too=False, extra={"watcher": plugin})
    pm.add_hookcall_monitoring(before, after)
    registry = Registry(pm)
    assert registry.guards["never"][1] == "watcher"
    assert ("register_guards", (CORE_PLUGIN,)) in calls
    assert ("register_guards", ("watcher",)) in calls
    assert ("register_protocols", (CORE_PLUGIN,)) in calls
    for hook in ("register_deviation_checks", "register_events"):
        assert (hook, (CORE_PLUGIN,)) in calls
    calls.clear()
    course = Course.open({"type": "course_opened", "at": "2025-01-06T09:00:00Z", "course_id": "p",
                          "protocol": "ipt-depression"}, registry)
    for event in [{"type": "measure_recorded", "instrument": "phq9", "score": 22, "item9": 0},
                  {"type": "diagnosis_confirmed", "diagnosis": "major_depressive_disorder"},
                  {"type": "treatment_started"}]:
        assert course.apply({"at": "2025-01-07T09:00:00Z", **event}).ok
    assert calls == [("state_changed", ("watcher",))]

