"""Composition of adaptations (SPEC §4) and the resolved protocol's fingerprint (SPEC §6)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from iptflow import ProtocolConflict, UnknownAdaptation, default_registry
from iptflow.cli import cli
from iptflow.protocol.compose import compose
from iptflow.protocol.variants import VariantDef

BASE = "ipt-depression"


def resolve(*names: str) -> Any:
    return default_registry().resolve(BASE, names)


@pytest.mark.parametrize(
    "names, lo, hi",
    [((), 12, 16), (("bipolar",), 12, 20), (("bipolar", "bulimia"), 15, 20),
     (("bipolar", "ptsd"), 14, 14), (("ptsd", "bipolar"), 14, 14)],
)
def test_session_ranges_combine_by_intersection(names: tuple[str, ...], lo: int, hi: int) -> None:
    rng = resolve(*names).session_range
    assert (rng.min, rng.max) == (lo, hi)


def test_indications_combine_by_union() -> None:
    assert resolve("bulimia", "bipolar").indications == [
        "bipolar_i", "bipolar_ii", "bulimia_nervosa", "binge_eating_disorder"]
    assert resolve("ptsd", "bipolar").indications == ["bipolar_i", "bipolar_ii", "ptsd"]
    assert resolve("adolescent").indications == ["major_depressive_disorder"]


def test_additions_are_merged() -> None:
    p = resolve("bipolar", "bulimia")
    assert {"preventive", "pre_group"} <= {s.name for s in p.states}
    assert {"ymrs", "srm", "ede_q", "binge_episodes"} <= set(p.instruments)
    assert p.adaptations == ["bipolar", "bulimia"]


def test_declared_incompatibility_is_a_conflict() -> None:
    with pytest.raises(ProtocolConflict, match="adolescent and bipolar cannot be combined"):
        resolve("bipolar", "adolescent")


@pytest.mark.parametrize(
    "names, clash",
    [(("adolescent", "ptsd"), "adolescent and ptsd have session ranges that do not overlap "
                              "(12-12 and 14-14)"),
     (("bulimia", "ptsd"), "bulimia and ptsd have session ranges that do not overlap "
                           "(15-20 and 14-14)"),
     (("adolescent", "bulimia"), "adolescent and bulimia have session ranges")],
)
def test_empty_intersection_names_both_adaptations(names: tuple[str, ...], clash: str) -> None:
    with pytest.raises(ProtocolConflict) as info:
        resolve(*names)
    assert clash in str(info.value)


def test_conflict_names_the_adaptations_that_clash_not_a_bystander() -> None:
    with pytest.raises(ProtocolConflict) as info:
        resolve("bipolar", "bulimia", "ptsd")     # 12-20, 15-20, 14-14
    assert "bulimia and ptsd" in str(info.value)


def test_unknown_adaptation() -> None:
    with pytest.raises(UnknownAdaptation, match="unknown adaptation 'perinatl' .*known: adolescent"):
        resolve("perinatl")


def test_same_set_in_another_order_gives_the_same_fingerprint() -> None:
    assert resolve("bulimia", "bipolar").fingerprint == resolve("bipolar", "bulimia").fingerprint
    registry = default_registry()
    a = compose(registry.find(BASE), [registry.adaptation("ptsd"), registry.adaptation("bipolar")])
    b = compose(registry.find(BASE), [registry.adaptation("bipolar"), registry.adaptation("ptsd")])
    assert a.canonical_json() == b.canonical_json()


def test_fingerprint_changes_with_the_adaptations() -> None:
    prints = {resolve(*names).fingerprint for names in
              [(), ("adolescent",), ("bipolar",), ("bulimia",), ("ptsd",), ("bipolar", "bulimia"),
               ("bipolar", "ptsd")]}
    assert len(prints) == 7


VARIANT = {"id": "v", "version": "1.0.0", "title": "V", "extends": BASE}
SETTINGS: list[dict[str, Any]] = [
    {"session_range": {"min": 8, "max": 8}},
    {"session_range": {"min": 12, "max": 15}},
    {"review_session": 6},
    {"max_problem_areas": 1},
    {"indications": ["persistent_depressive_disorder"]},
    {"deviations": {"long_initial_phase": {"max_sessions": 3}}},
    {"deviations": {"session_gap": {"days": 21}}},
    {"deviations": {"missed_sessions": {"run": 2}}},
    {"deviations": {"non_response": {"min_reduction_pct": 20}}},
    {"requirements": {"termination_window": {"sessions": 3}}},
    {"requirements": {"termination_room": {"sessions": 1}}},
    {"adaptations": ["ptsd"]},
    {"version": "1.0.1"},
    {"title": "V, renamed"},
]


def test_fingerprint_changes_with_every_setting() -> None:
    registry = default_registry()
    base = registry.find(BASE)

    def fingerprint(**settings: Any) -> str:
        variant = VariantDef.model_validate({**VARIANT, **settings})
        adaptations = [registry.adaptation(a) for a in variant.adaptations]
        return compose(base, adaptations, variant).fingerprint

    plain = fingerprint()
    assert plain == fingerprint()                       # the same settings, the same fingerprint
    prints = [fingerprint(**s) for s in SETTINGS]
    assert plain not in prints
    assert len(set(prints)) == len(SETTINGS)
    # every field a variant can set is exercised above
    settable = set(VariantDef.model_fields) - {"id", "extends", "description"}
    assert settable <= {key for s in SETTINGS for key in s}


def test_replay_of_a_conflicting_course_exits_2_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "conflict.course.jsonl"
    path.write_text(json.dumps({"type": "course_opened", "at": "2025-01-06T09:00:00Z",
                                "course_id": "x", "protocol": BASE,
                                "adaptations": ["ptsd", "adolescent"], "patient": {"age": 14}}) + "\n")
    result = CliRunner().invoke(cli, ["replay", "--json", str(path)])
    assert result.exit_code == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("iptflow: error: ") and "adolescent and ptsd" in line


def test_replay_of_incompatible_and_unknown_adaptations_exits_2(tmp_path: Path) -> None:
    for adaptations, words in ((["adolescent", "bipolar"], "cannot be combined"),
                               (["bipolr"], "unknown adaptation 'bipolr'")):
        path = tmp_path / "c.course.jsonl"
        path.write_text(json.dumps({"type": "course_opened", "at": "2025-01-06T09:00:00Z",
                                    "course_id": "x", "protocol": BASE,
                                    "adaptations": adaptations}) + "\n")
        result = CliRunner().invoke(cli, ["replay", str(path)])
        assert result.exit_code == 2 and result.stdout == ""
        assert len(result.stderr.splitlines()) == 1 and words in result.stderr
