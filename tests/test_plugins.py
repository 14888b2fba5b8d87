"""Plugin loading: entry points, the IPTFLOW_PLUGINS allow-list, ``iptflow plugins``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import entry_points

import pytest
from click.testing import CliRunner

from iptflow import Registry, UnknownAdaptation
from iptflow.cli import cli
from iptflow.hookspecs import HOOK_NAMES
from iptflow.plugins import CORE_PLUGIN, ENTRY_POINT_GROUP, allowed_plugins, make_plugin_manager

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
    listing = {item["name"]: item for item in json.loads(result.output)}
    bipolar = listing["bipolar"]
    assert bipolar["module"] == "iptflow_plugins.bipolar"
    assert bipolar["source"].startswith("entry point of iptflow")
    assert bipolar["hooks"] == ["register_adaptations", "register_events"]
    assert bipolar["registers"] == {
        "adaptations": ["bipolar"],
        "events": ["mania_assessed", "pharmacotherapy_confirmed", "preventive_phase_started"],
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
    assert [p["name"] for p in json.loads(proc.stdout)] == [CORE_PLUGIN, "ptsd"]
