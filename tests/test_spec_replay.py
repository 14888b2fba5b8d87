"""SPEC §6: course files and `iptflow replay`, through the library and the CLI."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from spec_support import opened, write_course

from iptflow.cli import cli
from iptflow.engine.registry import default_registry
from iptflow.engine.replay import replay_file
from iptflow.errors import CourseFileError

KEYS = ["course_id", "protocol", "state", "accepted", "rejected", "sessions_held", "open_reviews",
        "deviations", "outcome", "expectations_failed"]


def ev(etype: str, at: str, **fields) -> dict:
    return {"type": etype, "at": at, **fields}


def day(n: int, hour: int = 9) -> str:
    return f"2025-01-{n:02d}T{hour:02d}:00:00Z"


START = [
    opened("r-1", protocol="ipt-depression@1.0.0"),
    ev("measure_recorded", day(6, 10), instrument="phq9", score=18),
    ev("diagnosis_confirmed", day(6, 11), diagnosis="major_depressive_disorder"),
    ev("treatment_started", day(6, 12)),
]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def replay_json(path) -> tuple[int, dict]:
    code, out, err = run("replay", str(path), "--json")
    lines = out.splitlines()
    assert len(lines) == 1, out
    return code, json.loads(lines[0])


# --- the JSON object ---------------------------------------------------------------------------


@pytest.fixture
def sample(tmp_path):
    """A course file whose result SPEC determines line by line."""
    return write_course(tmp_path / "sample.course.jsonl", [
        *START,                                                               # lines 1-4
        "",                                                                   # line 5 (blank)
        ev("session_held", day(13)),                                          # 6
        ev("middle_phase_started", day(13, 10)),                              # 7: guard_failed
        {"expect": {"state": "initial", "sessions_held": 1}},                 # 8
        ev("session_held", day(31), number=2),                                # 9: session_gap
        ev("measure_recorded", day(31, 10), instrument="phq9", score=9,
           items=[1, 1, 1, 1, 1, 1, 1, 1, 1]),                                # 10: opens risk
        ev("sick_role_given", day(30), expect_error="out_of_order"),          # 11
        {"expect": {"open_reviews": ["risk"], "deviations": ["session_gap"],
                    "outcome_status": "partial_response"}},                   # 12
        {"expect": {"state": "middle"}},                                      # 13: fails
    ])


def test_replay_json_object_has_exactly_the_spec_keys_in_order(sample):
    code, data = replay_json(sample)
    assert list(data) == KEYS


def test_replay_json_object_values(sample):
    code, data = replay_json(sample)
    resolved = default_registry().resolve("ipt-depression@1.0.0")
    assert data["course_id"] == "r-1"
    assert data["protocol"] == {"id": "ipt-depression", "version": "1.0.0", "adaptations": [],
                                "fingerprint": resolved.fingerprint}
    assert data["state"] == "initial"
    assert data["accepted"] == 7  # course_opened included
    assert data["sessions_held"] == 2
    assert data["open_reviews"] == ["risk"]
    assert data["outcome"] == {"instrument": "phq9", "baseline": 18, "latest": 9,
                               "change_pct": -50.0, "status": "response"}
    assert [(r["line"], r["type"], r["code"]) for r in data["rejected"]] == [
        (7, "middle_phase_started", "guard_failed"), (11, "sick_role_given", "out_of_order")]
    assert data["rejected"][0]["guards"] == [
        "sick_role_given", "interpersonal_inventory_completed", "problem_area_chosen",
        "contract_agreed"]
    assert all(set(r) == {"line", "type", "code", "guards", "message"} for r in data["rejected"])
    assert data["rejected"][1]["guards"] == []
    assert [(d["line"], d["code"]) for d in data["deviations"]] == [(9, "session_gap")]
    assert set(data["deviations"][0]) == {"line", "code", "message"}
    assert [f["line"] for f in data["expectations_failed"]] == [12, 13]  # line 7 had no expect_error
    assert all(set(f) == {"line", "message"} for f in data["expectations_failed"])
    assert code == 1


def test_fingerprint_is_sha256_of_the_canonical_json_of_the_resolved_protocol():
    resolved = default_registry().resolve("ipt-depression")
    canonical = resolved.canonical_json()
    assert canonical == json.dumps(json.loads(canonical), sort_keys=True, separators=(",", ":"),
                                   ensure_ascii=False)
    assert resolved.fingerprint == "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", resolved.fingerprint)


def test_fingerprint_is_the_same_for_the_same_settings_and_differs_for_others():
    registry = default_registry()
    assert registry.resolve("ipt-depression").fingerprint == registry.resolve(
        "ipt-depression", []).fingerprint
    changed = registry.resolve("ipt-depression").model_copy(update={"review_session": 6})
    assert changed.fingerprint != registry.resolve("ipt-depression").fingerprint


def test_library_result_equals_cli_json(sample):
    code, data = replay_json(sample)
    result = replay_file(sample)
    assert result.to_dict() == data
    assert result.exit_status == code


def test_outcome_is_null_with_fewer_than_two_measures(tmp_path):
    path = write_course(tmp_path / "a.jsonl", START)
    code, data = replay_json(path)
    assert data["outcome"] is None
    assert code == 0


# --- line numbers ----------------------------------------------------------------------------------


def test_lines_are_physical_and_count_blank_and_expect_lines(tmp_path):
    path = write_course(tmp_path / "a.jsonl", [
        "", "   ", opened(), "", {"expect": {"state": "assessment"}}, "",
        ev("session_held", day(6, 10)),
    ])
    data = replay_file(path).to_dict()
    assert data["rejected"][0]["line"] == 7


# --- expect lines ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expect,holds",
    [
        ({"state": "initial"}, True),
        ({"state": "assessment"}, False),
        ({"sessions_held": 0}, True),
        ({"sessions_held": 1}, False),
        ({"outcome_status": None}, True),
        ({"outcome_status": "remission"}, False),
        ({"deviations": []}, True),
        ({"deviations": ["session_gap"]}, False),
        ({"open_reviews": []}, True),
        ({"open_reviews": ["risk"]}, False),
        ({}, True),
    ],
)
def test_expect_line_asserts_the_course_at_that_point(tmp_path, expect, holds):
    path = write_course(tmp_path / "a.jsonl", [*START, {"expect": expect}])
    result = replay_file(path)
    assert (result.expectations_failed == []) == holds
    assert result.exit_status == (0 if holds else 1)
    if not holds:
        assert result.expectations_failed[0]["line"] == 5
        assert next(iter(expect)) in result.expectations_failed[0]["message"]


def test_expected_open_reviews_are_compared_as_a_set(tmp_path):
    path = write_course(tmp_path / "a.jsonl", [
        *START, ev("risk_flagged", day(7), reason="x"), {"expect": {"open_reviews": ["risk", "risk"]}},
    ])
    assert replay_file(path).exit_status == 0


def test_expected_deviations_are_compared_in_order(tmp_path):
    events = [*START, ev("session_held", day(7))]
    events += [ev("session_missed", day(8 + i)) for i in range(3)]
    events += [ev("session_held", day(30))]
    good = write_course(tmp_path / "good.jsonl",
                        [*events, {"expect": {"deviations": ["missed_sessions", "session_gap"]}}])
    bad = write_course(tmp_path / "bad.jsonl",
                       [*events, {"expect": {"deviations": ["session_gap", "missed_sessions"]}}])
    assert replay_file(good).exit_status == 0
    assert replay_file(bad).exit_status == 1


@pytest.mark.parametrize(
    "line",
    [
        {"expect": {"status": "initial"}},
        {"expect": {"state": "initial"}, "note": "x"},
        {"expect": ["state", "initial"]},
        {"expect": {"sessions_held": "1"}},
        {"expect": {"deviations": "session_gap"}},
        {"expect": {"open_reviews": None}},
        {"expect": {"deviations": None}},
    ],
    ids=json.dumps,
)
def test_expect_line_with_other_keys_or_shape_makes_the_file_unusable(tmp_path, line):
    path = write_course(tmp_path / "a.jsonl", [*START, line])
    with pytest.raises(CourseFileError) as info:
        replay_file(path)
    assert info.value.line == 5
    code, out, err = run("replay", str(path), "--json")
    assert (code, out) == (2, "")
    assert f"{path}:5:" in err


# --- expect_error ------------------------------------------------------------------------------------


def test_expect_error_matching_the_rejection_passes(tmp_path):
    path = write_course(tmp_path / "a.jsonl",
                        [*START, ev("session_held", day(5), expect_error="out_of_order")])
    result = replay_file(path)
    assert result.exit_status == 0
    assert result.rejected[0]["code"] == "out_of_order"
    assert result.expectations_failed == []


def test_expect_error_with_another_code_is_a_failed_expectation(tmp_path):
    path = write_course(tmp_path / "a.jsonl",
                        [*START, ev("session_held", day(5), expect_error="guard_failed")])
    result = replay_file(path)
    assert result.exit_status == 1
    assert result.expectations_failed[0]["line"] == 5
    assert "out_of_order" in result.expectations_failed[0]["message"]
    assert result.rejected[0]["line"] == 5


def test_expect_error_on_an_accepted_event_is_a_failed_expectation(tmp_path):
    path = write_course(tmp_path / "a.jsonl",
                        [*START, ev("session_held", day(7), expect_error="guard_failed")])
    result = replay_file(path)
    assert result.exit_status == 1
    assert result.sessions_held == 1
    assert result.expectations_failed[0]["line"] == 5


def test_expect_error_is_taken_off_before_the_event_is_applied(tmp_path):
    # were the key left on, the event would be invalid (unknown field) instead of accepted
    path = write_course(tmp_path / "a.jsonl",
                        [*START, ev("session_held", day(7), expect_error="not_allowed")])
    assert replay_file(path).accepted == 5


def test_unexpected_rejection_gives_exit_status_1_without_a_failed_expectation(tmp_path):
    path = write_course(tmp_path / "a.jsonl", [*START, ev("termination_started", day(7))])
    result = replay_file(path)
    assert result.exit_status == 1
    assert result.expectations_failed == []
    code, data = replay_json(path)
    assert code == 1


def test_rejected_events_are_skipped_and_replay_goes_on(tmp_path):
    path = write_course(tmp_path / "a.jsonl", [
        *START, ev("termination_started", day(7), expect_error="not_allowed"), ev("session_held", day(8)),
    ])
    result = replay_file(path)
    assert (result.accepted, result.sessions_held, result.exit_status) == (5, 1, 0)


@pytest.mark.parametrize("code", ["rejected", "", 3, None, ["guard_failed"]])
def test_unknown_expect_error_code_makes_the_file_unusable(tmp_path, code):
    path = write_course(tmp_path / "a.jsonl", [*START, ev("session_held", day(7), expect_error=code)])
    with pytest.raises(CourseFileError):
        replay_file(path)
    assert run("replay", str(path))[0] == 2


def test_expect_error_on_course_opened_rejected_by_a_guard(tmp_path):
    path = write_course(tmp_path / "a.jsonl", [
        {**opened("g-1", format="group"), "expect_error": "guard_failed"},
        ev("measure_recorded", day(6, 10), instrument="phq9", score=18, expect_error="no_course"),
    ])
    code, data = replay_json(path)
    assert code == 0
    assert data["rejected"][0]["guards"] == ["format_offered"]


def test_expect_error_on_an_accepted_course_opened_fails(tmp_path):
    path = write_course(tmp_path / "a.jsonl", [{**opened(), "expect_error": "guard_failed"}])
    result = replay_file(path)
    assert result.exit_status == 1
    assert result.expectations_failed[0]["line"] == 1


# --- course_opened rejected by a guard ------------------------------------------------------------


def test_course_opened_rejected_by_a_guard_leaves_no_course(tmp_path):
    path = write_course(tmp_path / "a.jsonl", [
        opened("g-2", format="group"),
        ev("measure_recorded", day(6, 10), instrument="phq9", score=18),
        {"expect": {"state": None, "sessions_held": 0}},
        ev("course_opened", day(6, 11), course_id="g-3", protocol="ipt-depression@1.0.0"),
        {"type": 5},
    ])
    code, data = replay_json(path)
    assert data["course_id"] == "g-2"
    assert data["state"] is None
    assert data["protocol"] is None
    assert data["accepted"] == 0
    assert data["sessions_held"] == 0
    assert data["open_reviews"] == []
    assert data["deviations"] == []
    assert data["outcome"] is None
    assert [(r["line"], r["code"]) for r in data["rejected"]] == [
        (1, "guard_failed"), (2, "no_course"), (4, "no_course"), (5, "no_course")]
    assert data["expectations_failed"] == []
    assert code == 1


# --- unusable files --------------------------------------------------------------------------------


UNUSABLE = {
    "not_json": ["{not json"],
    "nan": [opened(), '{"type": "measure_recorded", "at": "2025-01-06T10:00:00Z", '
                      '"instrument": "phq9", "score": NaN}'],
    "infinity": [opened(), '{"type": "measure_recorded", "at": "2025-01-06T10:00:00Z", '
                           '"instrument": "phq9", "score": Infinity}'],
    "array_line": [opened(), '["session_held"]'],
    "string_line": [opened(), '"session_held"'],
    "first_not_course_opened": [ev("measure_recorded", day(6), instrument="phq9", score=3), opened()],
    "first_is_expect": [{"expect": {"state": "assessment"}}, opened()],
    "invalid_course_opened": [opened(colour="blue")],
    "naive_time_course_opened": [{**opened(), "at": "2025-01-06T09:00:00"}],
    "unknown_protocol": [opened(protocol="ipt-anxiety")],
    "unknown_adaptation": [opened(adaptations=["no-such-adaptation"])],
    "empty": [],
    "only_blank_lines": ["", "  "],
}


@pytest.mark.parametrize("name", sorted(UNUSABLE))
def test_unusable_file_exits_2_with_one_line_on_stderr_and_nothing_on_stdout(tmp_path, name):
    path = tmp_path / f"{name}.jsonl"
    if UNUSABLE[name]:
        write_course(path, UNUSABLE[name])
    else:
        path.write_text("", encoding="utf-8")
    with pytest.raises(CourseFileError):
        replay_file(path)
    for args in (["replay", str(path)], ["replay", str(path), "--json"]):
        code, out, err = run(*args)
        assert code == 2
        assert out == ""
        assert len(err.strip().splitlines()) == 1
        assert err.startswith("iptflow: error: ")
        assert str(path) in err
        assert "Traceback" not in err


def test_missing_file_exits_2(tmp_path):
    code, out, err = run("replay", str(tmp_path / "nope.jsonl"), "--json")
    assert (code, out) == (2, "")
    assert "nope.jsonl" in err and "Traceback" not in err


def test_unusable_line_is_named_in_the_error(tmp_path):
    path = write_course(tmp_path / "a.jsonl", [*START, "", "[1, 2]"])
    code, out, err = run("replay", str(path))
    assert f"{path}:6:" in err


# --- several files and directories -----------------------------------------------------------------


def test_directory_means_every_jsonl_below_it_sorted_by_relative_path(tmp_path):
    write_course(tmp_path / "b.jsonl", [opened("b")])
    (tmp_path / "a").mkdir()
    write_course(tmp_path / "a" / "z.course.jsonl", [opened("a/z")])
    write_course(tmp_path / "a" / "b.jsonl", [opened("a/b")])
    (tmp_path / "a" / "notes.txt").write_text("not a course")
    write_course(tmp_path / "c.json", [opened("c")])
    code, out, err = run("replay", str(tmp_path), "--json")
    *results, summary = out.splitlines()  # several files: a summary object last (docs/cli.md)
    assert [json.loads(line)["course_id"] for line in results] == ["a/b", "a/z", "b"]
    assert json.loads(summary)["summary"]["files"] == 3
    assert code == 0


def test_several_files_print_one_json_object_per_line_in_argument_order(tmp_path):
    one = write_course(tmp_path / "1.jsonl", [opened("one")])
    two = write_course(tmp_path / "2.jsonl", [opened("two")])
    code, out, err = run("replay", str(two), str(one), "--json")
    *lines, summary = out.splitlines()  # several files: a summary object last (docs/cli.md)
    assert list(json.loads(summary)) == ["summary"]
    assert [json.loads(line)["course_id"] for line in lines] == ["two", "one"]
    assert all(list(json.loads(line)) == KEYS for line in lines)


@pytest.mark.parametrize(
    "statuses,expected", [((0, 0), 0), ((0, 1), 1), ((1, 0), 1), ((0, 2), 2), ((2, 1), 2), ((1, 2, 0), 2)]
)
def test_exit_status_is_the_highest_of_the_files(tmp_path, statuses, expected):
    contents = {
        0: [opened()],
        1: [opened(), ev("session_held", day(7))],
        2: ["[]"],
    }
    paths = [str(write_course(tmp_path / f"{i}.jsonl", contents[s])) for i, s in enumerate(statuses)]
    code, out, err = run("replay", *paths, "--json")
    assert code == expected
    assert len(out.splitlines()) == sum(1 for s in statuses if s != 2) + 1  # + the summary object
    assert len(err.strip().splitlines()) == sum(1 for s in statuses if s == 2)


def test_directory_without_course_files_exits_2(tmp_path):
    code, out, err = run("replay", str(tmp_path))
    assert (code, out) == (2, "")
    assert "no course files" in err


# --- the text timeline -------------------------------------------------------------------------------


def test_text_timeline_shows_line_event_state_rejections_and_deviations(sample):
    code, out, err = run("replay", str(sample))
    assert code == 1
    rows = {int(m.group(1)): m.group(0) for m in re.finditer(r"^\s*(\d+)\s+\S+.*$", out, re.M)}
    assert re.search(r"\b6\s+session_held\s+initial", rows[6])
    assert "REJECTED guard_failed" in rows[7]
    assert "DEVIATION session_gap" in rows[9]
    assert "expected REJECTED out_of_order" in rows[11]
    assert "EXPECTATION FAILED" in out
    assert out.rstrip().endswith("FAIL")
    assert "outcome=response" in out


def test_text_timeline_of_a_passing_file_ends_with_pass(tmp_path):
    path = write_course(tmp_path / "a.jsonl", START)
    code, out, err = run("replay", str(path))
    assert code == 0
    assert out.rstrip().endswith("PASS")
    assert "ipt-depression 1.0.0" in out


def test_the_example_in_the_course_file_docs_replays_as_documented(tmp_path):
    doc = (Path(__file__).resolve().parents[1] / "docs" / "course-files.md").read_text(encoding="utf-8")
    example = re.search(r"```jsonl\n(.*?)```", doc, re.S).group(1)
    path = tmp_path / "example.course.jsonl"
    path.write_text(example, encoding="utf-8")
    code, data = replay_json(path)
    assert code == 0
    assert (data["state"], data["accepted"]) == ("initial", 4)
    assert [(r["line"], r["code"]) for r in data["rejected"]] == [(5, "not_allowed")]
    assert '"state": "initial", "accepted": 4,' in doc
