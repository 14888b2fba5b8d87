"""Protocol versions: both shipped as data, ``id`` and ``id@version``, adaptations per base
version, fingerprints, and every command that names a protocol."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from spec_support import write_course

from iptflow import Course, ProtocolConflict, UnknownProtocol, UnknownProtocolVersion
from iptflow.cli import cli
from iptflow.engine.registry import Registry, default_registry, version_key
from iptflow.protocol.compose import compose
from iptflow.protocol.models import AdaptationDef

AT = "2025-01-06T09:00:00Z"
# what release 89b7596 (before protocol versions) resolved "ipt-depression" to: a stored
# course's protocol keeps validating under this fingerprint
FINGERPRINT_1_0_0 = "sha256:90ffa004056c9fb0a5d2bc19f247e92f4bcc0384baa4fac337d45204b25fde5a"


def opened(protocol: str, **fields) -> dict:
    return {"type": "course_opened", "at": AT, "course_id": "v-1", "protocol": protocol, **fields}


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_both_versions_are_shipped_and_a_bare_id_means_the_newest() -> None:
    registry = default_registry()
    assert registry.protocol_versions("ipt-depression") == ["1.0.0", "2.0.0"]
    assert registry.resolve("ipt-depression").version == "2.0.0"
    assert registry.resolve("ipt-depression@1.0.0").version == "1.0.0"
    assert registry.resolve("ipt-depression").fingerprint == registry.resolve(
        "ipt-depression@2.0.0").fingerprint
    assert Course.open(opened("ipt-depression")).protocol.version == "2.0.0"
    assert Course.open(opened("ipt-depression@1.0.0")).protocol.summary()["id"] == "ipt-depression"


def test_the_fingerprint_differs_between_versions_and_1_0_0_keeps_its_own() -> None:
    registry = default_registry()
    old, new = registry.resolve("ipt-depression@1.0.0"), registry.resolve("ipt-depression@2.0.0")
    assert old.fingerprint == FINGERPRINT_1_0_0
    assert old.fingerprint != new.fingerprint
    for adaptation in ("adolescent", "bipolar", "bulimia", "ptsd"):
        assert (registry.resolve("ipt-depression@1.0.0", [adaptation]).fingerprint
                != registry.resolve("ipt-depression@2.0.0", [adaptation]).fingerprint)


@pytest.mark.parametrize("ref", ["ipt-depression@", "ipt-depression@2", "ipt-depression@v2.0.0",
                                 "ipt-depression@3.0.0", "ipt-depression@2.0.0 "])
def test_an_unknown_version_is_a_typed_error_naming_the_known_versions(ref: str) -> None:
    with pytest.raises(UnknownProtocolVersion, match=r"known versions: 1\.0\.0, 2\.0\.0") as info:
        Course.open(opened(ref))
    assert isinstance(info.value, UnknownProtocol) and info.value.code == "unknown_protocol_version"


def test_an_unknown_version_makes_a_course_file_unusable(tmp_path: Path) -> None:
    path = write_course(tmp_path / "v.course.jsonl", [opened("ipt-depression@9.9.9")])
    code, out, err = run("replay", str(path), "--json")
    assert (code, out) == (2, "")
    assert "unknown version '9.9.9' of protocol ipt-depression" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_adaptations_resolve_to_the_version_for_the_base() -> None:
    registry = default_registry()
    for adaptation in ("adolescent", "bipolar", "bulimia", "ptsd"):
        assert registry.adaptation(adaptation, "1.0.0").version == "1.0.0"
        assert registry.adaptation(adaptation, "2.0.0").version == "2.0.0"
    assert "mania_flagged" in registry.resolve("ipt-depression", ["bipolar"]).event_types
    assert "mania_flagged" not in registry.resolve("ipt-depression@1.0.0", ["bipolar"]).event_types


def test_an_adaptation_says_which_base_versions_it_applies_to() -> None:
    registry = default_registry()
    only_old = AdaptationDef(id="legacy", title="Legacy", base_versions=["1.0.0"])
    anywhere = AdaptationDef(id="any", title="Any")
    assert compose(registry.find("ipt-depression@1.0.0"), [only_old]).adaptations == ["legacy"]
    assert compose(registry.find("ipt-depression@2.0.0"), [anywhere]).adaptations == ["any"]
    with pytest.raises(ProtocolConflict, match="legacy does not apply to ipt-depression 2.0.0"):
        compose(registry.find("ipt-depression@2.0.0"), [only_old])


def test_versions_sort_by_number() -> None:
    assert sorted(["1.10.0", "1.9.0", "2.0.0", "1.0.0"], key=version_key) == [
        "1.0.0", "1.9.0", "1.10.0", "2.0.0"]


def test_a_variant_may_name_the_version_it_extends(tmp_path: Path) -> None:
    (tmp_path / "short.toml").write_text(
        'id = "short"\nversion = "1.0.0"\ntitle = "Short"\nextends = "ipt-depression@1.0.0"\n'
        'session_range = { min = 8, max = 8 }\n', encoding="utf-8")
    (tmp_path / "short-new.toml").write_text(
        'id = "short-new"\nversion = "1.0.0"\ntitle = "Short"\nextends = "ipt-depression"\n'
        'session_range = { min = 8, max = 8 }\n', encoding="utf-8")
    registry = Registry(protocol_dirs=[tmp_path])
    assert registry.resolve("short").base == "ipt-depression@1.0.0"
    assert registry.resolve("short-new").base == "ipt-depression@2.0.0"
    (tmp_path / "bad.toml").write_text(
        'id = "bad"\nversion = "1.0.0"\ntitle = "Bad"\nextends = "ipt-depression@0.1.0"\n',
        encoding="utf-8")
    with pytest.raises(UnknownProtocolVersion):
        Registry(protocol_dirs=[tmp_path]).resolve("bad")


def test_cli_protocols_lists_every_version() -> None:
    code, out, _ = run("protocols")
    assert code == 0
    assert "ipt-depression 1.0.0: Interpersonal Psychotherapy for major depression\n" in out
    assert "ipt-depression 2.0.0: Interpersonal Psychotherapy for major depression (newest)" in out
    assert "  ptsd 1.0.0: IPT for posttraumatic stress disorder (plugin ptsd, for 1.0.0)" in out
    data = json.loads(run("protocols", "--json")[1])
    base = [(p["version"], p["newest"]) for p in data["protocols"] if p["id"] == "ipt-depression"]
    assert base == [("1.0.0", False), ("2.0.0", True)]
    assert {(a["id"], a["version"]) for a in data["adaptations"]} >= {
        ("bipolar", "1.0.0"), ("bipolar", "2.0.0")}


def test_cli_show_and_schema_take_a_version() -> None:
    old, new = run("show", "ipt-depression@1.0.0")[1], run("show", "ipt-depression")[1]
    assert "ipt-depression 1.0.0" in old and "ending_discussed" not in old
    assert "ipt-depression 2.0.0" in new and "ending_discussed" in new
    code, out, err = run("show", "ipt-depression@2")
    assert code != 0 and "unknown version '2'" in (out + err)
    schema_old = run("schema", "event", "--protocol", "ipt-depression@1.0.0")[1]
    schema_new = run("schema", "event", "--protocol", "ipt-depression")[1]
    assert "item9" not in schema_old and "no_plan_reason" not in schema_old
    assert "item9" in schema_new and "handover" in schema_new and "ending_discussed" in schema_new
    assert "mania_flagged" in run("schema", "event", "--protocol", "ipt-depression",
                                  "--adapt", "bipolar")[1]


def test_cli_check_composes_an_adaptation_with_the_base_version_it_names() -> None:
    root = Path(__file__).resolve().parents[1]
    for version in ("1.0.0", "2.0.0"):
        code, out, _ = run("check", str(root / "plugins" / f"ptsd-{version}.toml"))
        assert code == 0, out
        assert "ok (adaptation ptsd" in out
    code, out, _ = run("check", "--base", "ipt-depression@1.0.0",
                       str(root / "plugins" / "ptsd-2.0.0.toml"))
    assert code == 2 and "does not apply to ipt-depression 1.0.0" in out


def test_diagrams_show_the_events_that_keep_a_course_in_its_state() -> None:
    from iptflow.interop import diagram, svg

    registry = default_registry()
    new = registry.resolve("ipt-depression", ["bipolar"])
    old = registry.resolve("ipt-depression@1.0.0", ["bipolar"])
    mermaid = diagram.to_mermaid(new, registry)
    assert ("note left of termination : session_held, session_missed, progress_reviewed, "
            "relapse_plan_recorded, ending_discussed") in mermaid
    assert "in every phase: measure_recorded, risk_flagged, risk_assessed, mania_flagged" in mermaid
    assert "ending_discussed" not in diagram.to_mermaid(old, registry)
    assert "mania_flagged" not in diagram.to_dot(old, registry)
    assert "(session_held, session_missed, ending_discussed)" in diagram.to_dot(new, registry)
    assert 'data-events="session_held session_missed progress_reviewed relapse_plan_recorded ' \
           'ending_discussed"' in svg.to_svg(new, registry)


@pytest.mark.parametrize("version", ["1.0.0", "2.0.0"])
@pytest.mark.parametrize("adaptations", [[], ["adolescent"], ["bipolar"], ["bulimia"], ["ptsd"]],
                         ids=lambda a: "+".join(a) or "base")
def test_generate_covers_every_route_and_requirement_of_both_versions(version, adaptations) -> None:
    from iptflow.research.generate import cover_transitions

    compiled = default_registry().compile(f"ipt-depression@{version}", adaptations)
    courses, uncovered, unfailed = cover_transitions(compiled)
    assert uncovered == []
    # format_offered cannot fail where every format is offered (bulimia offers group too)
    assert [n for n in unfailed if n != "format_offered"] == []
    assert courses


def test_every_shipped_version_checks_and_lints_clean() -> None:
    root = Path(__file__).resolve().parents[1]
    files = sorted((root / "protocols").glob("*/*.toml")) + sorted((root / "plugins").glob("*.toml"))
    assert len(files) == 10
    code, out, _ = run("check", *map(str, files))
    assert code == 0, out
    assert "lint" not in out


def test_check_composes_a_variant_with_the_adaptation_version_for_its_base(tmp_path: Path) -> None:
    for extends in ("ipt-depression@1.0.0", "ipt-depression"):
        path = tmp_path / "v.toml"
        path.write_text(f'id = "brief-bipolar"\nversion = "1.0.0"\ntitle = "Brief IPSRT"\n'
                        f'extends = "{extends}"\nadaptations = ["bipolar"]\n', encoding="utf-8")
        code, out, _ = run("check", str(path))
        assert code == 0, out
        registry = Registry(protocol_dirs=[tmp_path])
        has_flag = "mania_flagged" in registry.resolve("brief-bipolar").event_types
        assert has_flag == (extends == "ipt-depression")


def test_the_simulated_clinician_measures_bulimia_2_0_on_binge_episodes() -> None:
    from collections import Counter

    from iptflow.research.model import TrajectoryModel
    from iptflow.research.simulate import simulate_course

    registry = default_registry()
    for version, instrument in (("1.0.0", "phq9"), ("2.0.0", "binge_episodes")):
        compiled = registry.compile(f"ipt-depression@{version}", ["bulimia"])
        courses = [simulate_course(compiled, TrajectoryModel(), 1, i) for i in range(30)]
        assert {c.facts.baseline.instrument for c in courses} == {instrument}
        statuses = Counter(c.outcome.status for c in courses if c.outcome is not None)
        assert statuses["remission"] > 0, statuses  # compensatory episodes are measured too
        assert sum(c.state == "completed" for c in courses) > 15
