"""Diagrams: every state and state-changing edge of the compiled machine, phases, provenance."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from click.testing import CliRunner

from iptflow import AdaptationDef, Registry, default_registry, hookimpl
from iptflow.cli import cli
from iptflow.engine.plugins import make_plugin_manager
from iptflow.interop import diagram
from iptflow.interop.svg import to_svg

SVG = "{http://www.w3.org/2000/svg}"

CHECKIN = AdaptationDef.model_validate({
    "id": "checkin",
    "title": "Check-in before the middle phase (test adaptation)",
    "states": [{"name": "check_in", "phase": "initial", "description": "a check-in visit"}],
    "transitions": [
        {"event": "termination_started", "source": ["check_in"], "dest": "termination",
         "requires": ["no_open_review"]},
    ],
    "requirements": {
        "two_sessions": {"guard": "sessions_held_at_least", "params": {"count": 2},
                         "description": "two sessions held"},
    },
    "extra_requires": [{"event": "termination_started", "source": ["middle"], "requires": ["two_sessions"]}],
})


@hookimpl
def register_adaptations(register: Any) -> None:
    register(CHECKIN)


@pytest.fixture(scope="module")
def checkin_registry() -> Registry:
    plugin = ModuleType("checkin_plugin")  # a plugin object like any module (hashable, unlike a namespace)
    plugin.register_adaptations = register_adaptations  # type: ignore[attr-defined]
    pm, _ = make_plugin_manager(entry_points_too=False, extra={"checkin-plugin": plugin})
    return Registry(pm)


def machine_edges(registry: Registry, protocol: str, adaptations: list[str]) -> set[tuple[str, str, str]]:
    compiled = registry.compile(protocol, adaptations)
    return {
        (src, t.dest, name)
        for name, event in compiled.machine.events.items()
        for src, transitions in event.transitions.items()
        for t in transitions
    }


COMBINATIONS = [[], ["adolescent"], ["bipolar"], ["bulimia"], ["ptsd"], ["bipolar", "bulimia"]]


@pytest.mark.parametrize("adaptations", COMBINATIONS, ids=lambda a: "+".join(a) or "base")
def test_every_state_and_edge_of_the_machine_is_drawn(adaptations: list[str]) -> None:
    registry = default_registry()
    resolved = registry.resolve("ipt-depression", adaptations)
    states = set(registry.compile_resolved(resolved).machine.states)
    edges = machine_edges(registry, "ipt-depression", adaptations)
    assert states and edges

    mermaid = diagram.to_mermaid(resolved, registry)
    declared = set(re.findall(r'^\s*state "[^"]*" as (\w+)$', mermaid, re.M))
    assert declared == states
    drawn = {(m[0], m[1], m[2]) for m in re.findall(r"^\s*(\w+) --> (\w+): (\w+)", mermaid, re.M)}
    assert drawn == edges

    dot = diagram.to_dot(resolved, registry)
    nodes = set(re.findall(r'^\s{4}"(\w+)" \[label=', dot, re.M))
    assert nodes == states
    dot_edges = set(re.findall(r'^\s{2}"(\w+)" -> "(\w+)" \[label="(\w+)', dot, re.M))
    assert dot_edges == edges

    svg = ET.fromstring(to_svg(resolved, registry))
    assert svg.tag == f"{SVG}svg"
    groups = list(svg.iter(f"{SVG}g"))
    svg_states = {g.get("data-state") for g in groups if g.get("class") == "state"}
    assert svg_states == states
    svg_edges = [(g.get("data-source"), g.get("data-dest"), g.get("data-event"))
                 for g in groups if g.get("class") == "edge"]
    assert set(svg_edges) == edges
    assert len(svg_edges) == len(edges)


def test_phases_are_clusters() -> None:
    registry = default_registry()
    resolved = registry.resolve("ipt-depression", ["bulimia"])
    by_phase: dict[str, set[str]] = {}
    for s in resolved.states:
        by_phase.setdefault(s.phase or s.name, set()).add(s.name)
    assert by_phase["initial"] == {"initial", "pre_group"}
    dot = diagram.to_dot(resolved, registry)
    for phase, names in by_phase.items():
        block = dot.split(f'subgraph "cluster_{phase}" {{', 1)[1].split("\n  }", 1)[0]
        assert set(re.findall(r'^\s{4}"(\w+)" \[', block, re.M)) == names
    svg = ET.fromstring(to_svg(resolved, registry))
    clusters = {g.get("data-phase") for g in svg.iter(f"{SVG}g") if g.get("class") == "phase"}
    assert clusters == set(by_phase)
    placed = {g.get("data-state"): g.get("data-phase")
              for g in svg.iter(f"{SVG}g") if g.get("class") == "state"}
    assert placed["pre_group"] == "initial"
    mermaid = diagram.to_mermaid(resolved, registry)
    assert "class pre_group phase_initial_added" in mermaid
    assert "class initial phase_initial\n" in mermaid


def test_guard_names_are_on_the_edges() -> None:
    registry = default_registry()
    resolved = registry.resolve("ipt-depression")
    mermaid = diagram.to_mermaid(resolved, registry)
    assert re.search(r"initial --> middle: middle_phase_started \[session_held & sick_role_given", mermaid)
    dot = diagram.to_dot(resolved, registry)
    label = 'label="termination_started\\n[termination_window, no_open_review]"'
    assert f'"middle" -> "termination" [{label}' in dot
    svg = to_svg(resolved, registry)
    assert "middle -&gt; termination: termination_started [termination_window, no_open_review]" in svg


def test_provenance_of_a_registered_adaptation(checkin_registry: Registry) -> None:
    resolved = checkin_registry.resolve("ipt-depression", ["checkin"])
    who = "added by adaptation checkin (plugin checkin-plugin)"

    mermaid = diagram.to_mermaid(resolved, checkin_registry)
    assert f"note right of check_in : {who}" in mermaid
    assert "class check_in phase_initial_added" in mermaid
    assert "check_in --> termination: termination_started [no_open_review] (+checkin)" in mermaid
    assert "termination_window & no_open_review & two_sessions (+checkin)]" in mermaid
    assert "middle --> termination: termination_started [termination_window & no_open_review & two" in mermaid

    dot = diagram.to_dot(resolved, checkin_registry)
    node = re.search(r'^\s+"check_in" \[(.*)\];$', dot, re.M)
    assert node and "dashed" in node.group(1) and who in node.group(1)
    edge = re.search(r'^\s+"check_in" -> "termination" \[(.*)\];$', dot, re.M)
    assert edge and "style=dashed" in edge.group(1) and "+checkin" in edge.group(1)
    base_edge = re.search(r'^\s+"middle" -> "termination" \[(.*)\];$', dot, re.M)
    assert base_edge and "dashed" not in base_edge.group(1)
    assert "two_sessions (+checkin)" in base_edge.group(1)

    svg = ET.fromstring(to_svg(resolved, checkin_registry))
    marked = {(g.get("class"), g.get("data-state") or g.get("data-event"))
              for g in svg.iter(f"{SVG}g") if g.get("data-added-by") == "checkin"}
    assert marked == {("state", "check_in"), ("edge", "termination_started")}

    data = diagram.to_json(resolved, checkin_registry)
    state = next(s for s in data["states"] if s["name"] == "check_in")
    assert (state["added_by"], state["plugin"]) == ("checkin", "checkin-plugin")
    added = [t for t in data["transitions"] if t["added_by"] == "checkin"]
    assert [(t["source"], t["dest"], t["plugin"]) for t in added] == [
        ("check_in", "termination", "checkin-plugin")]
    middle = next(t for t in data["transitions"]
                  if t["source"] == "middle" and t["event"] == "termination_started")
    assert middle["requires_added_by"] == {"two_sessions": "checkin"}
    assert data["adaptations"] == [{"id": "checkin", "plugin": "checkin-plugin"}]


def test_cli_show_marks_the_bipolar_plugin() -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["show", "ipt-depression", "--adapt", "bipolar", "--format", "mermaid"])
    assert result.exit_code == 0, result.output
    assert "note right of preventive : added by adaptation bipolar (plugin bipolar)" in result.output
    assert "middle --> preventive: preventive_phase_started" in result.output
    assert "pharmacotherapy_confirmed (+bipolar)" in result.output
    result = runner.invoke(cli, ["show", "ipt-depression", "--adapt", "bipolar", "--format", "json"])
    data = json.loads(result.output)
    assert {s["name"]: s["added_by"] for s in data["states"]}["preventive"] == "bipolar"
    assert {s["name"]: s.get("plugin") for s in data["states"]}["preventive"] == "bipolar"
    for fmt, start in (("dot", "digraph "), ("svg", "<svg ")):
        result = runner.invoke(cli, ["show", "ipt-depression", "--adapt", "bipolar", "--format", fmt])
        assert result.exit_code == 0 and result.output.startswith(start)
        again = runner.invoke(cli, ["show", "ipt-depression", "--adapt", "bipolar", "--format", fmt])
        assert again.output == result.output  # deterministic
    bad = runner.invoke(cli, ["show", "ipt-depression", "--adapt", "nope", "--format", "svg"])
    assert bad.exit_code == 2 and "unknown adaptation 'nope'" in bad.output


def test_docs_show_the_current_mermaid() -> None:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "diagrams.md").read_text(encoding="utf-8")
    shown = doc.split("```mermaid\n", 1)[1].split("\n```", 1)[0]
    registry = default_registry()
    current = diagram.to_mermaid(registry.resolve("ipt-depression", ["bipolar"]), registry)
    assert shown == current.rstrip("\n")
