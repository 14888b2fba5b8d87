"""`iptflow replay` over many course files resolves and compiles each protocol once (issue #6)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import iptflow.engine.registry as registry_module
from iptflow.cli import cli
from iptflow.engine.registry import Registry
from iptflow.research.generate import random_courses, write_courses

SETS = [(), ("adolescent",), ("bulimia",), ("bipolar", "ptsd")]
PER_SET = 12


@pytest.fixture
def course_dir(tmp_path: Path) -> Path:
    registry = Registry()
    for adaptations in SETS:
        compiled = registry.compile("ipt-depression", adaptations)
        write_courses(random_courses(compiled, PER_SET, seed=3), tmp_path / ("-".join(adaptations) or "base"))
    return tmp_path


def test_replaying_a_directory_resolves_and_compiles_each_protocol_once(course_dir, monkeypatch):
    counts = {"resolve": 0, "compose": 0, "compile": 0}
    real_resolve = Registry.resolve
    real_compose = registry_module.compose
    real_compiled = registry_module.CompiledProtocol

    def resolve(self, protocol_id, adaptations=()):
        counts["resolve"] += 1
        return real_resolve(self, protocol_id, adaptations)

    def compose(*args, **kwargs):
        counts["compose"] += 1
        return real_compose(*args, **kwargs)

    def compiled_protocol(*args, **kwargs):
        counts["compile"] += 1
        return real_compiled(*args, **kwargs)

    monkeypatch.setattr(Registry, "resolve", resolve)
    monkeypatch.setattr(registry_module, "compose", compose)
    monkeypatch.setattr(registry_module, "CompiledProtocol", compiled_protocol)
    monkeypatch.setattr(registry_module, "_default", None)  # a fresh default registry for the CLI

    result = CliRunner().invoke(cli, ["replay", str(course_dir), "--json"])

    lines = [json.loads(line) for line in result.output.splitlines()[:-1]]  # last: the summary
    assert len(lines) == len(SETS) * PER_SET
    assert result.exit_code == 0, [r["expectations_failed"] for r in lines if r["expectations_failed"]]
    seen = {tuple(r["protocol"]["adaptations"]) for r in lines}
    assert seen == {tuple(sorted(s)) for s in SETS}
    # one resolution (composition) and one compiled machine per distinct protocol, not per file
    assert counts == {"resolve": len(SETS), "compose": len(SETS), "compile": len(SETS)}


def test_the_same_adaptations_in_another_order_share_one_compiled_protocol():
    registry = Registry()
    first = registry.compile("ipt-depression", ["ptsd", "bipolar"])
    assert registry.compile("ipt-depression", ["bipolar", "ptsd"]) is first
    assert registry.compile("ipt-depression", ("bipolar", "ptsd")) is first
    assert registry.compile("ipt-depression", []) is not first
