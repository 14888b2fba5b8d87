"""The pytest plugin: collection of course files, failure messages, options and fixtures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from iptflow.research.demo import demo_events

pytest_plugins = ["pytester"]

HARNESS = Path(__file__).resolve().parent.parent / "examples" / "harness"


def course_text(lines: list[dict]) -> str:
    return "".join(json.dumps(line) + "\n" for line in lines)


def opened(course_id: str = "c-1", **extra) -> dict:
    return {"type": "course_opened", "at": "2025-01-06T09:00:00Z", "course_id": course_id,
            "protocol": "ipt-depression@1.0.0", **extra}


def test_collects_one_item_per_course_file(pytester):
    pytester.makefile(".course.jsonl", good=course_text(demo_events()))
    pytester.makefile(".course.jsonl", other=course_text([opened("c-2")]))
    pytester.makefile(".jsonl", ignored=course_text([opened("c-3")]))
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(["good.course.jsonl::replay", "other.course.jsonl::replay"])
    assert "ignored" not in result.stdout.str()
    result = pytester.runpytest("-q")
    result.assert_outcomes(passed=2)


def test_failure_names_the_line_and_message_of_every_problem(pytester):
    lines = [
        opened(),                                                                    # line 1
        {"type": "treatment_started", "at": "2025-01-06T10:00:00Z"},                 # line 2
        {"expect": {"state": "initial"}},                                            # line 3
        {"type": "risk_assessed", "at": "2025-01-06T10:05:00Z", "level": "low",
         "safety_plan": True, "expect_error": "not_allowed"},                        # line 4
        {"type": "measure_recorded", "at": "2025-01-06T10:10:00Z", "instrument": "phq9",
         "score": 18, "expect_error": "guard_failed"},                               # line 5
    ]
    pytester.makefile(".course.jsonl", broken=course_text(lines))
    result = pytester.runpytest("-q")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*broken.course.jsonl: 4 problem(s)",
        "  line 2: treatment_started rejected unexpectedly: guard_failed: *no diagnosis*",
        '  line 3: expected state "initial", got "assessment"',
        "  line 4: expected rejection not_allowed, got guard_failed: *",
        "  line 5: expected rejection guard_failed, but the event was accepted",
    ])
    assert "Traceback" not in result.stdout.str()


def test_unusable_file_fails_with_its_one_line_error(pytester):
    pytester.makefile(".course.jsonl", unusable='{"type": "session_held", "at": "2025-01-06T10:00:00Z"}\n')
    result = pytester.runpytest("-q")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["unusable course file: *unusable.course.jsonl:1: the first line must be "
                                 "a course_opened event"])


def test_course_file_pattern_from_pytest_ini(pytester):
    pytester.makeini("[pytest]\niptflow_course_files = *.events.jsonl *.case.jsonl\n")
    pytester.makefile(".events.jsonl", a=course_text([opened("a")]))
    pytester.makefile(".case.jsonl", b=course_text([opened("b")]))
    pytester.makefile(".course.jsonl", c=course_text([opened("c")]))
    result = pytester.runpytest("--collect-only", "-q")
    out = result.stdout.str()
    assert "a.events.jsonl::replay" in out and "b.case.jsonl::replay" in out
    assert "c.course.jsonl" not in out


def test_course_file_pattern_from_pyproject(pytester):
    pytester.makepyprojecttoml('[tool.pytest.ini_options]\niptflow_course_files = ["*.ipt"]\n')
    pytester.makefile(".ipt", first=course_text([opened()]))
    result = pytester.runpytest("-q")
    result.assert_outcomes(passed=1)


def test_protocols_dir_option_finds_variants(pytester):
    variants = pytester.mkdir("variants")
    (variants / "brief.toml").write_text(
        'id = "ipt-brief"\nversion = "1.0.0"\ntitle = "brief"\nextends = "ipt-depression"\n'
        "session_range = { min = 8, max = 8 }\n"
    )
    pytester.makefile(".course.jsonl", brief=course_text([
        {**opened(), "protocol": "ipt-brief"}, {"expect": {"state": "assessment"}}]))
    pytester.runpytest("-q").assert_outcomes(failed=1)
    pytester.runpytest("-q", "--iptflow-protocols-dir", str(variants)).assert_outcomes(passed=1)


def test_fixtures(pytester):
    pytester.makepyfile(test_fx="""
        def test_make_course(make_course):
            course = make_course(patient={"age": 15}, adaptations=["adolescent"])
            assert course.state == "assessment" and course.course_id == "course-1"
            assert make_course().course_id == "course-2"

        def test_replay_events(replay_course):
            result = replay_course([
                {"type": "course_opened", "at": "2025-01-06T09:00:00Z", "course_id": "x",
                 "protocol": "ipt-depression@1.0.0"},
                {"type": "treatment_started", "at": "2025-01-06T10:00:00Z",
                 "expect_error": "guard_failed"},
                {"expect": {"state": "assessment"}},
            ])
            assert result.exit_status == 0 and result.rejected[0]["line"] == 2

        def test_store(iptflow_store, tmp_path):
            event = {"type": "course_opened", "at": "2025-01-06T09:00:00Z", "course_id": "s",
                     "protocol": "ipt-depression@1.0.0"}
            assert iptflow_store.open_course(event).ok
            assert [row.id for row in iptflow_store.list()] == ["s"]
    """)
    pytester.runpytest("-q").assert_outcomes(passed=3)


def test_example_harness_project(pytester):
    for item in HARNESS.iterdir():
        if item.name in ("__pycache__", ".pytest_cache"):
            continue
        target = pytester.path / item.name
        if item.is_dir():
            shutil.copytree(item, target)
        else:
            shutil.copy(item, target)
    result = pytester.runpytest("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)
    result.stdout.no_fnmatch_line("*error*")
