"""``iptflow check``: every problem of a protocol, adaptation or variant file, with line and field."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from iptflow.cli import cli
from iptflow.research.check import check_file, detect_kind

ROOT = Path(__file__).parent.parent


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "path, kind",
    [("protocols/ipt-depression/1.0.0.toml", "protocol"), ("plugins/adolescent-1.0.0.toml", "adaptation"),
     ("plugins/bipolar-1.0.0.toml", "adaptation"), ("plugins/bulimia-1.0.0.toml", "adaptation"),
     ("plugins/ptsd-1.0.0.toml", "adaptation"), ("examples/variants/ipt-brief.toml", "variant")],
)
def test_shipped_files_are_valid(path: str, kind: str) -> None:
    result = check_file(ROOT / path)
    assert (result.kind, result.problems) == (kind, [])
    assert result.resolved is not None and result.resolved.fingerprint.startswith("sha256:")


def test_detect_kind() -> None:
    assert detect_kind({"extends": "x"}) == "variant"
    assert detect_kind({"version": "1", "id": "p", "initial_state": "a"}) == "protocol"
    assert detect_kind({"version": "1", "id": "a", "base_versions": ["1.0.0"]}) == "adaptation"
    assert detect_kind({"id": "a", "title": "A"}) == "adaptation"


def test_every_schema_problem_with_line_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, "v.toml", 'id = "v"\nversion = 1\ntitle = "V"\nextends = "ipt-depression"\n'
                 'sesion_range = { min = 8, max = 8 }\nreview_session = 0\n')
    problems = [(p.line, p.field) for p in check_file(path).problems]
    assert problems == [(2, "version"), (5, "sesion_range"), (6, "review_session")]


def test_broken_references_in_an_adaptation_are_all_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "a.toml", """id = "x"
title = "X"
open_requires = ["nope"]

[[transitions]]
event = "pre_started"
source = ["assessment"]
dest = "pree"
requires = ["baseline_recorded", "missing_req"]
when = { fromat = "group" }

[[extra_requires]]
event = "course_completed"
source = ["completed"]
requires = ["no_open_review"]

[requirements.r]
guard = "no_such_guard"

[requirements.s]
guard = "event_recorded"
params = { event = "x" }

[instruments.foo]
title = "Foo"
opens_reviews = [{ review = "manic", score_at_least = 3 }]
""")
    result = check_file(path)
    assert result.kind == "adaptation" and result.resolved is None
    got = [(p.line, p.field) for p in result.problems]
    assert got == [
        (3, "open_requires[0]"),
        (6, "transitions[0].event"),
        (8, "transitions[0].dest"),
        (9, "transitions[0].requires[1]"),
        (10, "transitions[0].when"),
        (14, "extra_requires[0].source"),
        (18, "requirements.r.guard"),
        (22, "requirements.s.params"),
        (26, "instruments.foo.opens_reviews[0]"),
    ]
    messages = " | ".join(p.message for p in result.problems)
    for part in ("'pre_started'", "'pree'", "'missing_req'", "'fromat'", "final state",
                 "'no_such_guard'", "unknown parameter(s) 'event' (it takes: event_type, state, count)",
                 "unknown review 'manic'"):
        assert part in messages


def test_variant_problems_unknown_adaptation_conflict_and_settings(tmp_path: Path) -> None:
    path = write(tmp_path, "v.toml", """id = "ipt-depression"
version = "1.0.0"
title = "Broken"
extends = "ipt-depression"
adaptations = ["adolescent", "ptsd", "perinatl"]

[deviations.long_initial_phase]
max_sesions = 2

[deviations.no_such_code]
x = 1

[requirements.termination_window]
sessions = 3
""")
    problems = check_file(path).problems
    assert [(p.line, p.field) for p in problems] == [
        (1, "id"), (5, "adaptations[2]"), (5, "adaptations"),
        (7, "deviations.long_initial_phase"), (10, "deviations.no_such_code"),
    ]
    assert "'perinatl'" in problems[1].message
    assert "adolescent and ptsd" in problems[2].message
    assert "'max_sesions'" in problems[3].message


def test_unknown_base_protocol(tmp_path: Path) -> None:
    path = write(tmp_path, "v.toml", 'id = "v"\nversion = "1"\ntitle = "V"\nextends = "ipt-anxiety"\n')
    (problem,) = check_file(path).problems
    assert (problem.line, problem.field) == (4, "extends")
    assert "unknown protocol 'ipt-anxiety'" in problem.message


def test_variant_settings_resolve_a_session_range_conflict_on_purpose(tmp_path: Path) -> None:
    path = write(tmp_path, "v.toml", 'id = "v"\nversion = "1"\ntitle = "V"\nextends = "ipt-depression"\n'
                 'adaptations = ["adolescent", "ptsd"]\nsession_range = { min = 13, max = 13 }\n')
    result = check_file(path)
    assert result.problems == []
    assert result.resolved is not None and result.resolved.session_range.max == 13


def test_protocol_with_unknown_states_and_checks(tmp_path: Path) -> None:
    text = (ROOT / "protocols/ipt-depression/1.0.0.toml").read_text()
    text = text.replace('initial_state = "assessment"', 'initial_state = "asessment"')
    text = text.replace('check = "session_gap"', 'check = "session_gaps"')
    result = check_file(write(tmp_path, "p.toml", text.replace('id = "ipt-depression"', 'id = "p"')))
    assert {p.field for p in result.problems} == {"initial_state", "deviations[1].check"}
    assert all(p.line for p in result.problems)


def test_cli_exit_status_and_one_line_per_problem(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.toml", 'id = "v"\nversion = "1"\ntitle = "V"\nextends = "nope"\n'
                'adaptations = ["zzz"]\n')
    runner = CliRunner()
    ok = runner.invoke(cli, ["check", str(ROOT / "examples/variants/ipt-brief.toml")])
    assert ok.exit_code == 0 and "ok (variant ipt-brief" in ok.output
    result = runner.invoke(cli, ["check", str(bad), str(ROOT / "plugins/ptsd-1.0.0.toml")])
    assert result.exit_code == 2
    lines = result.output.splitlines()
    assert lines[0].startswith(f"{bad}:4: extends: unknown protocol 'nope'")
    assert lines[1].startswith(f"{bad}:5: adaptations[0]: unknown adaptation 'zzz'")
    assert "plugins/ptsd-1.0.0.toml: ok (adaptation ptsd" in lines[2]
    assert "Traceback" not in result.output


def test_cli_json_and_unreadable_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["check", "--json", str(tmp_path / "missing.toml")])
    assert result.exit_code == 2
    (item,) = [json.loads(line) for line in result.output.splitlines()]
    assert item["ok"] is False
    assert item["problems"][0]["message"].startswith("cannot read")


def test_protocols_dir_lets_a_variant_extend_a_protocol_on_the_path(tmp_path: Path) -> None:
    base = (ROOT / "protocols/ipt-depression/1.0.0.toml").read_text().replace(
        'id = "ipt-depression"', 'id = "ipt-local"')
    (tmp_path / "protocols").mkdir()
    write(tmp_path / "protocols", "ipt-local.toml", base)
    variant = write(tmp_path, "local-brief.toml",
                    'id = "lb"\nversion = "1"\ntitle = "LB"\nextends = "ipt-local"\n')
    runner = CliRunner()
    assert runner.invoke(cli, ["check", str(variant)]).exit_code == 2
    result = runner.invoke(cli, ["check", "--protocols-dir", str(tmp_path / "protocols"), str(variant)])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("old, new, message", [
    ("min = 0\nmax = 27\nitems = 9", "min = 0\nmax = 27\nitems = true",
     "instruments.phq9.items: must be an integer, not true"),
    ("min = 0\nmax = 27\nitems = 9", 'min = 0\nmax = "27"\nitems = 9',
     'instruments.phq9.max: must be a number, not "27"'),
    ("min = 0\nmax = 27\nitems = 9", "min = 0\nmax = inf\nitems = 9",
     "instruments.phq9.max: must be a finite number, not inf"),
    ("min = 0\nmax = 27\nitems = 9", "min = 30\nmax = 27\nitems = 9",
     "instruments.phq9: the score range 30-27 is empty (min above max)"),
    ("item_min = 0\nitem_max = 3", "item_min = 4\nitem_max = 3",
     "instruments.phq9: the item range 4-3 is empty (item_min above item_max)"),
    ("min = 0\nmax = 27\nitems = 9", "min = 0\nmax = 27\nitems = -9",
     "instruments.phq9.items: must be greater than or equal to 0, not -9"),
    ('{ review = "risk", item = 9, above = 0 }', '{ review = "risk", item = 0, above = 0 }',
     "instruments.phq9.opens_reviews[0].item: must be greater than or equal to 1, not 0"),
    ("review_session = 8", "review_session = true", "review_session: must be an integer, not true"),
    ("[session_range]\nmin = 12\nmax = 16", "[session_range]\nmin = 16\nmax = 12",
     "session_range: the session range 16-12 is empty (min above max)"),
    ('indications = ["major_depressive_disorder"]', "indications = []", "indications: must not be empty"),
    ('id = "ipt-depression"', 'id = "../ipt"', "id: '../ipt' is not a valid id"),
])
def test_protocol_settings_and_instrument_definitions_are_validated_strictly(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    text = (ROOT / "protocols/ipt-depression/1.0.0.toml").read_text(encoding="utf-8")
    assert old in text
    path = write(tmp_path, "p.toml", text.replace(old, new)
                 .replace('id = "ipt-depression"', 'id = "ipt-strict"'))
    result = CliRunner().invoke(cli, ["check", str(path)])
    assert result.exit_code == 2, result.output
    assert re.search(rf"{re.escape(str(path))}:\d+: {re.escape(message)}", result.output), result.output
