"""Protocol lint: findings on deliberately broken protocol and variant files."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from iptflow_protocols import __file__ as protocols_init

from iptflow.engine.registry import Registry
from iptflow.research.lint import lint_protocol

BASE = Path(protocols_init).with_name("ipt-depression") / "1.0.0.toml"


def registry_with(tmp_path: Path, name: str, text: str) -> Registry:
    (tmp_path / name).write_text(text, encoding="utf-8")
    return Registry(protocol_dirs=[tmp_path])


def codes(findings):
    return sorted((f.code, f.place) for f in findings)


@pytest.mark.parametrize("adaptations", [[], ["adolescent"], ["bipolar"], ["bulimia"], ["ptsd"]])
def test_shipped_protocols_are_clean(adaptations):
    assert lint_protocol("ipt-depression", adaptations) == []


def test_variant_with_empty_session_range_does_not_resolve(tmp_path):
    """min above max is an error (the protocol cannot run), not a lint finding."""
    reg = registry_with(tmp_path, "v.toml", """
id = "ipt-empty"
version = "1.0.0"
title = "broken"
extends = "ipt-depression"
session_range = { min = 10, max = 8 }
""")
    findings = lint_protocol("ipt-empty", registry=reg)
    assert [f.code for f in findings] == ["unresolvable"]
    assert "the session range 10-8 is empty (min above max)" in findings[0].message


def test_variant_with_review_session_beyond_range_and_impossible_requirements(tmp_path):
    reg = registry_with(tmp_path, "v.toml", """
id = "ipt-odd"
version = "1.0.0"
title = "broken"
extends = "ipt-depression"
session_range = { min = 8, max = 8 }
review_session = 10

[requirements.session_held]
count = 9

[requirements.termination_sessions]
count = 5
""")
    assert codes(lint_protocol("ipt-odd", registry=reg)) == [
        ("requirement_never_holds", "requirements.session_held"),
        ("requirements_conflict", "transitions[course_completed from termination to completed]"),
        ("requirements_conflict", "transitions[maintenance_started from termination to maintenance]"),
        ("review_session_out_of_range", "review_session"),
    ]


def broken_protocol() -> str:
    data = BASE.read_text(encoding="utf-8").replace('id = "ipt-depression"', 'id = "ipt-broken"')
    assert tomllib.loads(data)["id"] == "ipt-broken"
    return data + """
[[states]]
name = "limbo"
phase = "middle"

[[states]]
name = "waiting"
phase = "middle"

[[transitions]]
event = "progress_reviewed"
source = ["waiting"]
dest = "limbo"
requires = ["not_defined_anywhere"]

[requirements.magic]
guard = "no_such_guard"

[requirements.needs_srm]
guard = "measure_recorded"
params = { instrument = "srm" }

[requirements.needs_consent]
guard = "event_recorded"
params = { event_type = "guardian_consent_recorded" }

[[deviations]]
code = "odd"
check = "no_such_check"

[instruments.phq9x]
title = "broken"
max = 27
opens_reviews = [{ review = "mania", score_at_least = 12 }]
"""


def test_broken_protocol_file(tmp_path):
    reg = registry_with(tmp_path, "broken.toml", broken_protocol())
    found = codes(lint_protocol("ipt-broken", registry=reg))
    assert found == [
        ("bad_params", "requirements.needs_srm"),  # an undefined instrument: 'srm' is not one
        ("dead_end_state", "states.limbo"),
        ("event_allowed_nowhere", "requirements.needs_consent"),
        ("undefined_requirement", "transitions[progress_reviewed from waiting to limbo]"),
        ("undefined_review", "instruments.phq9x"),
        ("unknown_check", "deviations.odd"),
        ("unknown_guard", "requirements.magic"),
        ("unreachable_state", "states.limbo"),
        ("unreachable_state", "states.waiting"),
    ]


def test_unresolvable_protocol_is_a_finding_not_a_crash(tmp_path):
    findings = lint_protocol("ipt-depression", ["adolescent", "bulimia"])
    assert [f.code for f in findings] == ["unresolvable"]
    assert "12-12 and 15-20" in findings[0].message
    assert lint_protocol("no-such-protocol")[0].code == "unresolvable"


def test_iptflow_check_reports_lint_findings(tmp_path):
    from click.testing import CliRunner

    from iptflow.cli import cli

    variant = tmp_path / "odd.toml"
    variant.write_text('id = "ipt-odd"\nversion = "1.0.0"\ntitle = "odd"\n'
                       'extends = "ipt-depression"\nsession_range = { min = 8, max = 8 }\n'
                       'review_session = 10\n')
    result = CliRunner().invoke(cli, ["check", str(variant)])
    assert result.exit_code == 1
    assert (f"{variant}: lint: review_session: review_session_out_of_range: the review session 10 "
            "lies beyond the session range 8-8") in result.output
    as_json = CliRunner().invoke(cli, ["check", str(variant), "--json"])
    assert json.loads(as_json.output)["lint"][0]["code"] == "review_session_out_of_range"
    clean = CliRunner().invoke(cli, ["check", str(BASE)])
    assert clean.exit_code == 0 and "lint" not in clean.output
