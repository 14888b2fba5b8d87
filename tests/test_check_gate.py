"""``iptflow check`` is the gate: whatever it accepts, every command runs on without a traceback.

A hypothesis property builds variants from the shipped ``examples/variants/ipt-brief.toml`` by
mutating its settings (parameters of requirements and deviations, session range, review
session, indications, id, base version, adaptations) with values of random types. A variant
``check`` accepts is compiled, replayed (the demo course and a generated course), generated
(``generate --random 2``) and simulated (3 courses) through the real CLI without an exception;
a variant it rejects gives exit 2 naming the file and line. Then one test per reproduction of
issue 12's "Validation lets broken protocols through".
"""

from __future__ import annotations

import copy
import json
import math
import re
import tempfile
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iptflow.cli import cli
from iptflow.engine.registry import Registry, default_registry
from iptflow.errors import IptflowError
from iptflow.research.coverage import GeneratedCourse
from iptflow.research.demo import demo_events
from iptflow.research.generate import write_courses

ROOT = Path(__file__).parent.parent
BRIEF = tomllib.loads((ROOT / "examples" / "variants" / "ipt-brief.toml").read_text(encoding="utf-8"))
ADAPTATIONS: list[list[str]] = [[], [], [], ["adolescent"], ["ptsd"], ["bipolar"], ["bulimia"]]


# -- writing a variant as TOML ---------------------------------------------------------------
def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else "inf" if value == math.inf else (
            "-inf" if value == -math.inf else repr(value))
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    return str(value)


def toml_text(data: dict[str, Any]) -> str:
    lines = [f"{key} = {toml_value(value)}" for key, value in data.items()
             if key not in ("deviations", "requirements")]
    for table in ("deviations", "requirements"):
        for name, params in data.get(table, {}).items():
            lines += ["", f"[{table}.{name}]"]
            lines += [f"{key} = {toml_value(value)}" for key, value in params.items()]
    return "\n".join(lines) + "\n"


# -- random variants -------------------------------------------------------------------------
@cache
def settable(version: str, adaptations: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """(table, name, parameter) a variant extending this base with these adaptations can set."""
    resolved = default_registry().resolve(f"ipt-depression@{version}", list(adaptations))
    out = [("requirements", name, param) for name, req in resolved.requirements.items()
           for param in req.params]
    out += [("deviations", dev.code, param) for dev in resolved.deviations for param in dev.params]
    return sorted(out)


ANY_VALUE = st.one_of(
    st.integers(-3, 40),
    st.integers(-3, 40),
    st.floats(-5, 120),
    st.sampled_from([math.inf, -math.inf, math.nan, 10**30]),
    st.booleans(),
    st.sampled_from(["ten", "4", "", "maintenance", "termination", "risk", "baseline", "phq9"]),
    st.lists(st.sampled_from(["moderate", "high", "maintenance", "preventive", 3]), max_size=3),
)
IDS = st.sampled_from(["ipt-brief", "ipt-x.2", "brief_b", "../../escaped", "/tmp/abs", "Upper",
                       "", "a b", "-lead"])
INDICATIONS = st.lists(st.sampled_from(["major_depressive_disorder", "ptsd", "bipolar_i",
                                        "bulimia_nervosa", "grief reaction", ""]), max_size=3)
SETTINGS = {
    "session_range": st.one_of(
        st.fixed_dictionaries({"min": st.integers(-1, 24), "max": st.integers(-1, 24)}),
        st.fixed_dictionaries({"min": ANY_VALUE, "max": ANY_VALUE}),
    ),
    "review_session": st.one_of(st.integers(-1, 24), ANY_VALUE),
    "indications": st.one_of(INDICATIONS, ANY_VALUE),
    "max_problem_areas": st.one_of(st.integers(-1, 4), ANY_VALUE),
    "id": IDS,
}


@st.composite
def variants(draw: st.DrawFn) -> dict[str, Any]:
    data = copy.deepcopy(BRIEF)
    del data["description"]
    version = draw(st.sampled_from(["1.0.0", "2.0.0"]))
    data["extends"] = f"ipt-depression@{version}"
    data["adaptations"] = draw(st.sampled_from(ADAPTATIONS))
    targets = settable(version, tuple(data["adaptations"]))
    for _ in range(draw(st.integers(0, 3))):
        if draw(st.booleans()):
            table, name, param = draw(st.sampled_from(targets))
            data.setdefault(table, {}).setdefault(name, {})[param] = draw(ANY_VALUE)
        else:
            key = draw(st.sampled_from(sorted(SETTINGS)))
            data[key] = draw(SETTINGS[key])
    return data


# -- running the commands --------------------------------------------------------------------
def run(*args: str) -> Result:
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"iptflow {' '.join(args)} raised {result.exception!r}\n{result.output}")
    assert "Traceback" not in result.output
    return result


def demo_course(path: Path, protocol: str) -> Path:
    events = demo_events("gate-demo")
    events[0] = {**events[0], "protocol": protocol, "adaptations": []}
    path.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    return path


def every_command_runs_on(variant: str, directory: Path) -> None:
    registry = Registry(protocol_dirs=[directory])
    registry.compile(variant)  # no exception at all: check compiled it the same way
    where = ["--protocols-dir", str(directory)]
    replayed = run("replay", *where, str(demo_course(directory / "demo.course.jsonl", variant)))
    assert replayed.exit_code in (0, 1), replayed.output
    generated = run("generate", variant, "--random", "2", "--out", str(directory / "gen"), *where)
    assert generated.exit_code == 0, generated.output
    files = sorted((directory / "gen").iterdir())
    assert len(files) == 2 and all(f.parent == directory / "gen" for f in files)
    replayed = run("replay", *where, str(files[0]))
    assert replayed.exit_code == 0, replayed.output
    simulated = run("simulate", variant, "--n", "3", "--db", str(directory / "sim.db"), *where)
    assert simulated.exit_code == 0, simulated.output


LINE = re.compile(r"\.toml:\d+: ")


@settings(max_examples=40, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(variants())
def test_what_check_accepts_every_command_runs_on(data: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "variants"
        directory.mkdir()
        path = directory / "variant.toml"
        path.write_text(toml_text(data), encoding="utf-8")
        checked = run("check", str(path))
        if checked.exit_code == 2:  # rejected: every problem names the file and its line
            problems = [line for line in checked.output.splitlines() if line.startswith(str(path))]
            assert problems and all(LINE.search(line) for line in problems), checked.output
            return
        assert checked.exit_code in (0, 1), checked.output  # 1: lint findings only
        every_command_runs_on(data["id"], directory)


# -- issue 12: "Validation lets broken protocols through" --------------------------------------
def variant_file(tmp_path: Path, body: str, adaptations: str = "[]") -> Path:
    directory = tmp_path / "variants"
    directory.mkdir(exist_ok=True)
    path = directory / "v.toml"
    path.write_text('id = "ipt-gate"\nversion = "1.0.0"\ntitle = "gate"\n'
                    f'extends = "ipt-depression@1.0.0"\nadaptations = {adaptations}\n{body}',
                    encoding="utf-8")
    return path


def assert_rejected(path: Path, line: int, message: str) -> None:
    result = run("check", str(path))
    assert result.exit_code == 2
    assert f"{path}:{line}: {message}" in result.output, result.output


def assert_unusable(*args: str) -> str:
    """A command on the rejected variant: one line naming the problem, exit 2."""
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("iptflow: error: ") and result.output.count("\n") == 1
    return result.output


def test_empty_indications_are_rejected_by_check_simulate_and_generate(tmp_path: Path) -> None:
    path = variant_file(tmp_path, "indications = []\n")
    assert_rejected(path, 6, "indications: must not be empty")
    where = ["--protocols-dir", str(path.parent)]
    out = assert_unusable("simulate", "ipt-gate", "--n", "3", "--db", str(tmp_path / "s.db"), *where)
    assert "indications: must not be empty" in out
    assert_unusable("generate", "ipt-gate", "--random", "2", "--out", str(tmp_path / "gen"), *where)
    assert not (tmp_path / "gen").exists()


def test_an_empty_indication_is_rejected(tmp_path: Path) -> None:
    assert_rejected(variant_file(tmp_path, 'indications = [""]\n'), 6, "indications[0]: ")


@pytest.mark.parametrize("days, shown", [('"ten"', '"ten"'), ('"fourteen"', '"fourteen"'),
                                         ("-1", "-1"), ("inf", "inf")])
def test_a_session_gap_that_is_not_a_positive_number_is_rejected(
    tmp_path: Path, days: str, shown: str
) -> None:
    path = variant_file(tmp_path, f"\n[deviations.session_gap]\ndays = {days}\n")
    result = run("check", str(path))
    assert result.exit_code == 2
    assert f"{path}:7: deviations.session_gap: deviation 'session_gap' (check 'session_gap'): " \
           f"parameter 'days' must be " in result.output and f"not {shown}" in result.output
    course = demo_course(tmp_path / "demo.course.jsonl", "ipt-gate")
    out = assert_unusable("replay", "--protocols-dir", str(path.parent), str(course))
    assert "parameter 'days' must be" in out


def test_review_session_true_is_not_1(tmp_path: Path) -> None:
    assert_rejected(variant_file(tmp_path, "review_session = true\n"), 6,
                    "review_session: must be an integer, not true")


def test_max_sessions_as_text_is_rejected(tmp_path: Path) -> None:
    path = variant_file(tmp_path, '\n[deviations.long_initial_phase]\nmax_sessions = "4"\n')
    assert_rejected(path, 7, "deviations.long_initial_phase: deviation 'long_initial_phase' (check "
                             "'long_initial_phase'): parameter 'max_sessions' must be an integer, "
                             'not "4"')


def test_min_reduction_pct_as_text_is_rejected(tmp_path: Path) -> None:
    path = variant_file(tmp_path, '\n[deviations.non_response]\nmin_reduction_pct = "lots"\n')
    assert_rejected(path, 7, "deviations.non_response: deviation 'non_response' (check "
                             "'non_response'): parameter 'min_reduction_pct' must be a number, "
                             'not "lots"')


def test_a_guards_min_as_text_and_an_empty_age_range_are_rejected(tmp_path: Path) -> None:
    path = variant_file(tmp_path, '\n[requirements.adolescent_age]\nmin = "8"\n', '["adolescent"]')
    assert_rejected(path, 7, "requirements.adolescent_age: requirement 'adolescent_age' (guard "
                             "'patient_age_between'): parameter 'min' must be an integer, not \"8\"")
    path = variant_file(tmp_path, "\n[requirements.adolescent_age]\nmin = 20\n", '["adolescent"]')
    assert_rejected(path, 7, "requirements.adolescent_age: requirement 'adolescent_age' (guard "
                             "'patient_age_between'): the age range 20-18 is empty (min above max)")


def test_an_empty_session_range_is_an_error_not_a_warning(tmp_path: Path) -> None:
    path = variant_file(tmp_path, "session_range = { min = 16, max = 12 }\n")
    assert_rejected(path, 6, "session_range: the session range 16-12 is empty (min above max)")
    out = assert_unusable("simulate", "ipt-gate", "--n", "3", "--db", str(tmp_path / "s.db"),
                          "--protocols-dir", str(path.parent))
    assert "the session range 16-12 is empty" in out


@pytest.mark.parametrize("bad_id", ["../../escaped", "/tmp/iptflow-escaped", "Brief", "a b"])
def test_an_id_that_is_not_a_safe_file_name_is_rejected(tmp_path: Path, bad_id: str) -> None:
    path = variant_file(tmp_path, "")
    path.write_text(path.read_text().replace('id = "ipt-gate"', f"id = {json.dumps(bad_id)}"))
    assert_rejected(path, 1, f"id: {bad_id!r} is not a valid id: use lower-case letters")
    out = tmp_path / "deep" / "out"
    assert_unusable("generate", bad_id, "--random", "1", "--out", str(out),
                    "--protocols-dir", str(path.parent))
    assert not (tmp_path / "deep").exists() and not (tmp_path / "escaped").exists()


def test_generate_never_writes_outside_out(tmp_path: Path) -> None:
    """Defence in depth: a course name that would leave --out is refused, nothing is written."""
    good = GeneratedCourse("ok.course.jsonl", [{"type": "course_opened"}])
    bad = GeneratedCourse("../escaped.course.jsonl", [{"type": "course_opened"}])
    with pytest.raises(IptflowError, match="outside"):
        write_courses([good, bad], tmp_path / "out")
    assert list(tmp_path.iterdir()) == []
