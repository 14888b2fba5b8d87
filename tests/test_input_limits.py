"""Inputs at the edges: depth, huge numbers, lone surrogates, validation messages, unknown names.

Each test goes through what a user meets: the library's ``Course``, or the real CLI (click's
CliRunner), never a private helper alone.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from iptflow import Course, Registry, UnknownEventType, UnknownProtocol
from iptflow.cli import cli
from iptflow.engine.jsonio import MAX_INTEGER, MAX_NESTING, JSONLimitError, strict_loads
from iptflow.store import Store

ROOT = Path(__file__).resolve().parent.parent
REMISSION = ROOT / "tests" / "courses" / "base" / "remission.course.jsonl"
OPENED = {"type": "course_opened", "at": "2025-01-06T09:00:00Z", "course_id": "c-1",
          "protocol": "ipt-depression@1.0.0"}
AT = "2025-01-06T09:10:00Z"


def _nested(depth: int) -> object:
    value: object = []
    for _ in range(depth - 1):
        value = [value]
    return value


def _in_treatment() -> Course:
    course = Course.open(OPENED)
    for event in (
        {"type": "measure_recorded", "at": AT, "instrument": "phq9", "score": 19},
        {"type": "diagnosis_confirmed", "at": AT, "diagnosis": "major_depressive_disorder"},
        {"type": "treatment_started", "at": AT},
    ):
        assert course.apply(event).ok
    return course


def _replay(tmp_path: Path, extra_line: str, *args: str):
    lines = REMISSION.read_text(encoding="utf-8").splitlines()
    path = tmp_path / "edited.jsonl"
    path.write_text("\n".join([*lines[:3], extra_line]) + "\n", encoding="utf-8")
    return CliRunner().invoke(cli, ["replay", str(path), *args])


# -- nesting -------------------------------------------------------------------------------------
def test_one_nesting_limit_for_the_decoder_the_engine_and_the_store() -> None:
    ok = "[" * (MAX_NESTING - 1) + "]" * (MAX_NESTING - 1)
    assert strict_loads('{"a": ' + ok + "}") is not None  # exactly the limit: read
    for depth in (MAX_NESTING + 1, 5_000, 100_000):  # past Python's recursion limit too
        with pytest.raises(JSONLimitError, match=f"more than {MAX_NESTING} levels"):
            strict_loads('{"a": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}")
    course = Course.open(OPENED)
    event = {"type": "measure_recorded", "at": AT, "instrument": "phq9", "score": 3,
             "items": _nested(MAX_NESTING)}  # with the event object: one level too many
    result = course.apply(event)
    assert (result.code, f"more than {MAX_NESTING} levels" in result.message) == ("invalid_event", True)
    loop: list = []
    loop.append(loop)  # a cycle is too deep, never a RecursionError
    assert course.apply({**event, "items": loop}).code == "invalid_event"
    with Store.open(":memory:") as store:
        assert store.open_course({**OPENED, "actor": _nested(MAX_NESTING)}).code == "invalid_event"
        assert store.open_course({**OPENED, "actor": _nested(MAX_NESTING - 1)}).code == "invalid_event"
        # one level less is within the limit: what fails then is the field's type, as for the engine
        assert "must be a string" in store.open_course(
            {**OPENED, "actor": _nested(MAX_NESTING - 1)}).message


@pytest.mark.parametrize("depth", [MAX_NESTING + 1, 1_000, 50_000])
def test_a_course_file_nested_too_deeply_is_unusable_exit_2(tmp_path: Path, depth: int) -> None:
    line = '{"type": "session_held", "at": "2025-03-01T10:00:00Z", "x": ' + \
        "[" * (depth - 1) + "]" * (depth - 1) + "}"
    result = _replay(tmp_path, line, "--json")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert f"edited.jsonl:4: the line cannot be read: objects or arrays are nested more than " \
        f"{MAX_NESTING} levels deep" in result.stderr


# -- numbers ------------------------------------------------------------------------------------
def test_a_huge_session_number_is_invalid_event_naming_the_field_not_a_plugin_error() -> None:
    course = _in_treatment()
    before = course.snapshot()
    for number in (10**5000, -(10**30), MAX_INTEGER + 1):
        result = course.apply({"type": "session_held", "at": AT, "number": number})
        assert result.code == "invalid_event"
        assert result.message.startswith("session_held: number: the number is too large")
    assert course.snapshot() == before
    result = course.apply({"type": "session_held", "at": AT, "number": MAX_INTEGER})
    assert result.code == "guard_failed"  # within range: the protocol's rule answers
    assert "session number 9007199254740991 given, but this is session 1" in result.message


def test_a_huge_score_in_a_course_file_says_the_number_is_too_large(tmp_path: Path) -> None:
    measure = '{"type": "measure_recorded", "at": "2025-03-01T10:00:00Z", "instrument": "phq9", "score": '
    result = _replay(tmp_path, measure + "9" * 5000 + "}")  # more digits than Python reads
    assert result.exit_code == 2 and result.stdout == ""
    assert "a number is too large (more than 4300 digits)" in result.stderr
    assert "set_int_max_str_digits" not in result.stderr
    result = _replay(tmp_path, measure + "9" * 40 + "}", "--json")  # readable, out of range
    assert result.exit_code == 1
    (rejected,) = json.loads(result.stdout)["rejected"]
    assert rejected["code"] == "invalid_event"
    assert rejected["message"].startswith("measure_recorded: score: the number is too large")


# -- surrogates ---------------------------------------------------------------------------------
def test_a_lone_surrogate_is_invalid_event_in_the_engine_as_in_the_store(tmp_path: Path) -> None:
    course = _in_treatment()
    result = course.apply({"type": "session_held", "at": AT, "actor": "dr \ud800"})
    assert result.code == "invalid_event"
    assert result.message == ("session_held: actor: holds a lone surrogate ('\\ud800'), which is "
                              "not UTF-8 text")
    result = course.apply({"type": "session_held", "at": AT, "\udfff": 1})
    assert result.code == "invalid_event" and "a key holds a lone surrogate" in result.message
    line = json.dumps({"type": "session_held", "at": "2025-03-01T10:00:00Z", "actor": "\ud800"})
    out = _replay(tmp_path, line, "--json")
    assert out.exit_code == 1 and "Traceback" not in out.output
    (rejected,) = json.loads(out.stdout)["rejected"]
    assert rejected["code"] == "invalid_event" and "lone surrogate" in rejected["message"]


# -- messages ------------------------------------------------------------------------------------
@pytest.mark.parametrize("fields, message", [
    ({"instrument": "phq9", "score": "high"}, "measure_recorded: score: must be a number"),
    ({"instrument": "phq9", "score": None}, "measure_recorded: score: must be a number"),
    ({"instrument": "phq9", "score": 1e400}, "measure_recorded: score: must be a finite number"),
    ({"instrument": "phq9", "score": 5, "items": [1, "a", 2.5]},
     "measure_recorded: items.1: must be an integer; items.2: must be an integer"),
    ({"instrument": 7, "score": 5}, "measure_recorded: instrument: must be a string"),
    ({"score": 5}, "measure_recorded: instrument: required field is missing"),
    ({"instrument": "phq9", "score": 5, "scroe": 5}, "measure_recorded: scroe: unknown field"),
])
def test_validation_messages_name_each_field_once_in_plain_words(fields: dict, message: str) -> None:
    result = Course.open(OPENED).apply({"type": "measure_recorded", "at": AT, **fields})
    assert (result.code, result.message) == ("invalid_event", message)
    for internal in (".int", ".float", "Input should", "Value error"):
        assert internal not in result.message


def test_validation_messages_of_other_field_kinds() -> None:
    course = Course.open(OPENED)
    risk = course.apply({"type": "risk_assessed", "at": AT, "level": "extreme", "safety_plan": "yes"})
    assert risk.message == ("risk_assessed: level: must be one of 'low', 'moderate' or 'high'; "
                            "safety_plan: must be true or false")
    referred = course.apply({"type": "course_referred", "at": AT, "reason": ""})
    assert referred.message == "course_referred: reason: must not be empty"
    _, opened = Course.try_open({**OPENED, "patient": {"age": 200}, "format": "pair"})
    assert opened.message == ("course_opened: patient.age: must be at most 130; "
                              "format: must be one of 'individual' or 'group'")


# -- unknown names ----------------------------------------------------------------------------------
def test_an_unknown_protocol_names_close_matches_and_caps_the_list(tmp_path: Path) -> None:
    for i in range(40):
        (tmp_path / f"variant-{i:02d}.toml").write_text(
            f'id = "variant-{i:02d}"\nversion = "1.0.0"\ntitle = "v"\n'
            'extends = "ipt-depression@1.0.0"\n', encoding="utf-8")
    registry = Registry(protocol_dirs=[tmp_path])
    with pytest.raises(UnknownProtocol) as caught:
        Course.open({**OPENED, "protocol": "varient-07"}, registry)
    message = str(caught.value)
    assert len(registry.protocol_ids()) == 41  # the 40 variants and the base protocol
    assert "(did you mean 'variant-07'" in message  # the closest first
    assert message.endswith(" and 31 more)") and len(message) < 400
    with pytest.raises(UnknownProtocol, match=r"did you mean 'ipt-depression'\? known: "
                       r"ipt-depression, variant-00"):
        Course.open({**OPENED, "protocol": "ipt-depresion"}, registry)


def test_try_open_raises_for_an_unknown_protocol_and_returns_for_a_rejection() -> None:
    with pytest.raises(UnknownProtocol):  # as README.md and docs/events.md say
        Course.try_open({**OPENED, "protocol": "no-such-protocol"})
    course, result = Course.try_open({**OPENED, "patient": {"age": 200}})
    assert course is None and result.code == "invalid_event"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "still raises `ProtocolError` for an unknown protocol" in readme


def test_unmet_requirements_never_reads_as_nothing_missing_for_what_cannot_happen() -> None:
    course = Course.open(OPENED)
    with pytest.raises(UnknownEventType, match=r"unknown event type 'sesion_held' .*did you mean "
                       r"'session_held'"):
        course.unmet_requirements("sesion_held")
    ((name, message),) = course.unmet_requirements("session_held")  # not in assessment
    assert name == "not_allowed"
    assert message == course.apply({"type": "session_held", "at": AT}).message
    assert [n for n, _ in course.unmet_requirements("treatment_started")] == [
        "diagnosis_indicated", "baseline_recorded"]
    assert course.apply({"type": "course_referred", "at": AT, "reason": "moved away"}).ok
    assert [n for n, _ in course.unmet_requirements("session_held")] == ["course_closed"]
