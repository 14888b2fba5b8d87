"""Generated courses: coverage checked against the compiled machine, determinism, validity."""

from __future__ import annotations

import json
import typing
from pathlib import Path

import pytest
from click.testing import CliRunner

from iptflow.cli import cli
from iptflow.engine.events import CourseOpened
from iptflow.engine.registry import default_registry
from iptflow.engine.replay import read_lines, replay_file
from iptflow.research.generate import cover_transitions, random_courses, write_courses

pytest_plugins = ["pytester"]

ADAPTATIONS = [[], ["adolescent"], ["bipolar"], ["bulimia"], ["ptsd"]]


def taken(paths: list[Path], compiled) -> tuple[set, set]:
    """Replay files independently and record each route taken and each requirement failed."""
    routes, failed = set(), set()
    registry = compiled.registry
    from iptflow.engine.course import Course

    for path in paths:
        lines = [line for line in read_lines(path) if line.event is not None]
        course, result = Course.try_open(lines[0].event, registry)
        failed.update(getattr(result, "guards", ()))
        if course is None:
            continue
        for line in lines[1:]:
            options = compiled.allowed.get(course.state, {}).get(line.event["type"])
            key = None
            if options:
                route = compiled.route(course.state, line.event["type"], course.facts)
                key = (course.state, line.event["type"], options.index(route))
            result = course.apply(line.event)
            if result.ok and key:
                routes.add(key)
            elif not result.ok:
                failed.update(result.guards)
    return routes, failed


def every_route(compiled) -> set:
    return {(s, e, i) for s, events in compiled.allowed.items() for e, rs in events.items()
            for i in range(len(rs))}


def every_requirement(compiled) -> set:
    names = {r.name for r in compiled.open_requires}
    for events in compiled.allowed.values():
        for routes in events.values():
            for route in routes:
                names.update(r.name for r in route.requires)
    return names


@pytest.mark.parametrize("adaptations", ADAPTATIONS, ids=lambda a: "+".join(a) or "base")
def test_cover_takes_every_transition_and_fails_every_guard(adaptations, tmp_path):
    compiled = default_registry().compile("ipt-depression", adaptations)
    courses, _, _ = cover_transitions(compiled)
    paths = write_courses(courses, tmp_path)
    routes, failed = taken(paths, compiled)
    assert every_route(compiled) - routes == set()
    never = every_requirement(compiled) - failed
    # a requirement may be impossible to break: format_offered when every format the event
    # model accepts is offered (bulimia offers both individual and group)
    formats = set(typing.get_args(CourseOpened.model_fields["format"].annotation))
    if formats <= set(compiled.protocol.formats):
        never.discard("format_offered")
    assert never == set()
    for path in paths:
        assert replay_file(path).exit_status == 0, path


def test_generated_files_pass_the_cli_and_the_plugin(tmp_path, pytester):
    out = tmp_path / "gen"
    result = CliRunner().invoke(cli, ["generate", "ipt-depression", "--adapt", "bipolar", "--cover",
                                      "transitions", "--random", "5", "--seed", "7", "--out", str(out)])
    assert result.exit_code == 0, result.output
    files = sorted(out.glob("*.course.jsonl"))
    assert len(files) > 5
    replay = CliRunner().invoke(cli, ["replay", str(out), "--json"])
    assert replay.exit_code == 0
    assert json.loads(replay.output.splitlines()[-1])["summary"]["passed"] == len(files)
    for f in files:
        (pytester.path / f.name).write_bytes(f.read_bytes())
    pytester.runpytest("-q", "-p", "no:cacheprovider").assert_outcomes(passed=len(files))


def test_same_seed_same_bytes(tmp_path):
    args = ["generate", "ipt-depression", "--adapt", "bulimia", "--random", "6", "--seed", "42",
            "--cover", "transitions"]
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    runner = CliRunner()
    assert runner.invoke(cli, [*args, "--out", str(a)]).exit_code == 0
    assert runner.invoke(cli, [*args, "--out", str(b)]).exit_code == 0
    args[args.index("42")] = "43"
    assert runner.invoke(cli, [*args, "--out", str(c)]).exit_code == 0
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    assert all((a / n).read_bytes() == (b / n).read_bytes() for n in names)
    randoms = [n for n in names if "random" in n]
    assert any((a / n).read_bytes() != (c / n).read_bytes() for n in randoms)


def test_random_courses_are_mostly_accepted_with_marked_rejections():
    compiled = default_registry().compile("ipt-depression")
    courses = random_courses(compiled, 30, seed=1)
    events = [line for c in courses for line in c.lines if "type" in line]
    rejected = [line for line in events if "expect_error" in line]
    assert 0 < len(rejected) < len(events) / 5
    assert {json.loads(json.dumps(line))["expect_error"] for line in rejected} <= {
        "guard_failed", "not_allowed"}
    finals = {c.lines[-1]["expect"]["state"] for c in courses}
    assert "completed" in finals


def test_generate_needs_a_mode_and_a_known_protocol(tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["generate", "ipt-depression", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--cover transitions" in result.output
    result = runner.invoke(cli, ["generate", "nope", "--random", "1", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "unknown protocol 'nope'" in result.output
