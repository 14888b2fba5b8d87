"""Variant files on the protocol search path (--protocols-dir, IPTFLOW_PROTOCOLS_PATH)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from iptflow import Course, ProtocolError, Registry, UnknownProtocol
from iptflow.cli import cli
from iptflow.engine.plugins import load_plugins
from iptflow.engine.replay import replay_file

ROOT = Path(__file__).parent.parent
VARIANTS = ROOT / "examples" / "variants"
# also collected by the pytest plugin, through iptflow_protocols_dirs in pyproject.toml
COURSES = Path(__file__).parent / "courses_variants"


def registry(*dirs: Path) -> Registry:
    return Registry(load_plugins(), protocol_dirs=dirs)


@pytest.mark.parametrize("path", sorted(COURSES.glob("*.jsonl")), ids=lambda p: p.name)
def test_variant_course_files_replay_with_protocols_dir(path: Path) -> None:
    result = CliRunner().invoke(cli, ["replay", "--json", "--protocols-dir", str(VARIANTS), str(path)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["protocol"]["id"] == "ipt-brief"
    assert data["expectations_failed"] == []


def test_without_the_search_path_the_variant_is_unknown() -> None:
    result = CliRunner().invoke(cli, ["replay", str(COURSES / "ipt-brief.course.jsonl")])
    assert result.exit_code == 2 and result.stdout == ""
    assert "unknown protocol 'ipt-brief'" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_environment_search_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IPTFLOW_PROTOCOLS_PATH", f"/nonexistent-dir:{VARIANTS}")
    result = replay_file(COURSES / "ipt-brief.course.jsonl", registry())
    assert (result.exit_status, result.state) == (0, "completed")


def test_brief_variant_settings() -> None:
    p = registry(VARIANTS).resolve("ipt-brief")
    assert (p.id, p.version, p.variant, p.base) == (
        "ipt-brief", "1.0.0", "ipt-brief@1.0.0", "ipt-depression@1.0.0")
    assert (p.session_range.min, p.session_range.max, p.review_session) == (8, 8, 4)
    assert {d.code: d.params for d in p.deviations}["long_initial_phase"] == {"max_sessions": 2}
    assert p.requirements["termination_window"].params == {"sessions": 3}


def test_variant_settings_win_over_adaptations(tmp_path: Path) -> None:
    (tmp_path / "teen-ptsd.toml").write_text(
        'id = "teen-ptsd"\nversion = "0.1.0"\ntitle = "Adolescent PTSD pilot"\n'
        'extends = "ipt-depression"\nadaptations = ["adolescent", "ptsd"]\n'
        'session_range = { min = 13, max = 13 }\nreview_session = 6\n')
    reg = registry(tmp_path)
    p = reg.resolve("teen-ptsd")
    assert p.adaptations == ["adolescent", "ptsd"]
    assert (p.session_range.min, p.session_range.max, p.review_session) == (13, 13, 6)
    course = Course.open({"type": "course_opened", "at": "2025-01-06T09:00:00Z", "course_id": "t",
                          "protocol": "teen-ptsd", "patient": {"age": 16}}, reg)
    assert course.protocol.fingerprint == p.fingerprint
    # a course's own adaptations are added to the variant's: here one that clashes
    with pytest.raises(ProtocolError, match="cannot be combined"):
        reg.resolve("teen-ptsd", ["bipolar"])


def test_protocols_and_show_use_the_search_path() -> None:
    runner = CliRunner()
    listing = json.loads(runner.invoke(
        cli, ["protocols", "--json", "--protocols-dir", str(VARIANTS)]).stdout)
    brief = next(p for p in listing["protocols"] if p["id"] == "ipt-brief")
    assert (brief["kind"], brief["extends"]) == ("variant", "ipt-depression@1.0.0")
    assert brief["source"].endswith("ipt-brief.toml")
    shown = runner.invoke(cli, ["show", "ipt-brief", "--format", "json", "--protocols-dir",
                                str(VARIANTS)])
    assert shown.exit_code == 0
    assert json.loads(shown.stdout)["session_range"] == {"min": 8, "max": 8}


def test_a_variant_cannot_extend_a_variant(tmp_path: Path) -> None:
    (tmp_path / "briefer.toml").write_text(
        'id = "briefer"\nversion = "1"\ntitle = "Briefer"\nextends = "ipt-brief"\n')
    reg = registry(VARIANTS, tmp_path)
    with pytest.raises(ProtocolError, match="itself a variant"):
        reg.resolve("briefer")


def test_unreadable_files_on_the_path_are_named_when_a_protocol_is_unknown(tmp_path: Path) -> None:
    (tmp_path / "broken.toml").write_text('id = "broken"\nextends = "ipt-depression"\n')
    with pytest.raises(UnknownProtocol) as info:
        registry(tmp_path).resolve("broken")
    assert "broken.toml" in str(info.value) and "version" in str(info.value)
