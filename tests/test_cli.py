"""The CLI basics: --version, protocols, show, schema, demo, and unusable course files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner
from spec_support import opened, write_course

from iptflow.cli import cli
from iptflow.engine.registry import default_registry

BASE_TOML = Path(__file__).resolve().parents[1] / "protocols" / "ipt-depression" / "1.0.0.toml"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def iptflow_command() -> list[str]:
    exe = shutil.which("iptflow", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-c", "from iptflow.cli import main; main()"]


def test_version_prints_the_installed_version():
    code, out, _ = run("--version")
    assert code == 0
    assert out.strip() == f"iptflow, version {version('iptflow')}"


def test_protocols_lists_the_base_protocol():
    code, out, _ = run("protocols")
    assert code == 0
    assert "ipt-depression 1.0.0: Interpersonal Psychotherapy for major depression" in out


def test_protocols_json_lists_protocols_and_adaptations():
    code, out, _ = run("protocols", "--json")
    data = json.loads(out)
    assert code == 0
    base = next(p for p in data["protocols"] if p["id"] == "ipt-depression")
    assert (base["kind"], base["version"]) == ("protocol", "1.0.0")
    assert isinstance(data["adaptations"], list)


def test_show_text_names_states_transitions_and_fingerprint():
    code, out, _ = run("show", "ipt-depression")
    resolved = default_registry().resolve("ipt-depression")
    assert code == 0
    assert resolved.fingerprint in out
    assert "sessions: 12-16, review at session 8" in out
    assert ("treatment_started -> initial  requires: diagnosis_indicated, no_psychotic_features, "
            "baseline_recorded, suicide_screen, no_open_review") in out
    old = run("show", "ipt-depression@1.0.0")[1]
    assert ("treatment_started -> initial  requires: diagnosis_indicated, no_psychotic_features, "
            "baseline_recorded, no_open_review") in old
    for state in ("assessment", "initial", "middle", "termination", "maintenance", "completed"):
        assert any(line.startswith(state) for line in out.splitlines())


def test_show_json_holds_the_resolved_transitions():
    code, out, _ = run("show", "ipt-depression", "--format", "json")
    data = json.loads(out)
    resolved = default_registry().resolve("ipt-depression")
    assert code == 0
    assert data["protocol"]["fingerprint"] == resolved.fingerprint
    assert data["session_range"] == {"min": 12, "max": 16}
    assert len(data["transitions"]) == len(resolved.transitions)
    assert {(t["event"], t["source"], t["dest"]) for t in data["transitions"]} == {
        (t.event, t.source[0], t.dest) for t in resolved.transitions}


def test_show_mermaid_draws_every_state_changing_transition_with_its_guards():
    code, out, _ = run("show", "ipt-depression", "--format", "mermaid")
    assert code == 0
    assert "stateDiagram-v2" in out
    compiled = default_registry().compile("ipt-depression")
    edges = 0
    for name, event in compiled.machine.events.items():
        for source, transitions in event.transitions.items():
            for transition in transitions:
                routes = compiled.allowed[source][name]
                route = next(r for r in routes if r.dest == transition.dest)
                edge = f"{source} --> {transition.dest}: {name}"
                if route.requires:
                    edge += " [" + " & ".join(r.name for r in route.requires) + "]"
                assert edge in out
                edges += 1
    assert edges == 16  # 5 active states x 2 endings + 6 phase changes


def test_show_unknown_protocol_is_a_one_line_error():
    code, out, err = run("show", "ipt-anxiety")
    assert (code, out) == (2, "")
    assert err.startswith("iptflow: error: unknown protocol 'ipt-anxiety'")


def test_schema_protocol_is_a_json_schema_the_base_protocol_satisfies():
    code, out, _ = run("schema", "protocol")
    schema = json.loads(out)
    assert code == 0
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    data = tomllib.loads(BASE_TOML.read_text(encoding="utf-8"))
    assert list(validator.iter_errors(data)) == []
    data["sesion_range"] = data.pop("session_range")
    assert list(validator.iter_errors(data))


def test_demo_runs_a_complete_course_to_remission(tmp_path):
    code, out, _ = run("demo", "--db", str(tmp_path / "demo.db"))
    assert code == 0
    assert "PHQ-9 17 (item 9: 1); opens the suicide risk review" in out  # the safety path
    assert "risk moderate, safety plan reviewed; closes the suicide risk review" in out
    assert "problem area: role transition" in out
    assert "warning signs: withdrawing from friends, early waking, skipping meals" in out
    assert "PHQ-9 17 at baseline, 3 at the end: 82% reduction (remission)." in out
    assert "The course is completed after 12 sessions." in out
    for jargon in ("PASS", "sha256", "-82.4%", "accepted="):
        assert jargon not in out


# --- unusable course files ------------------------------------------------------------------------


UNUSABLE = {
    "not_json.jsonl": ["{not json"],
    "nan.jsonl": [opened(), '{"type": "measure_recorded", "at": "2025-01-06T10:00:00Z", '
                            '"instrument": "phq9", "score": NaN}'],
    "array_line.jsonl": [opened(), "[1, 2, 3]"],
    "first_not_opened.jsonl": [{"type": "session_held", "at": "2025-01-06T10:00:00Z"}],
    "invalid_opened.jsonl": [{**opened(), "at": "2025-01-06 09:00"}],
    "unknown_protocol.jsonl": [opened(protocol="ipt-anxiety")],
    "bad_expect.jsonl": [opened(), {"expect": {"phase": "assessment"}}],
    "bad_expect_error.jsonl": [{**opened(), "expect_error": "rejected"}],
    "empty.jsonl": [],
}


def _write_unusable(tmp_path: Path) -> list[Path]:
    paths = []
    for name, lines in UNUSABLE.items():
        path = tmp_path / name
        if lines:
            write_course(path, lines)
        else:
            path.write_text("", encoding="utf-8")
        paths.append(path)
    return paths


@pytest.mark.parametrize("name", sorted(UNUSABLE))
def test_unusable_course_file_exits_2_without_traceback(tmp_path, name):
    path = next(p for p in _write_unusable(tmp_path) if p.name == name)
    code, out, err = run("replay", str(path))
    assert code == 2
    assert out == ""
    assert err.startswith(f"iptflow: error: {path}")
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in out + err


def test_installed_command_reports_every_unusable_file_in_one_line_each(tmp_path):
    paths = _write_unusable(tmp_path) + [tmp_path / "missing.jsonl"]
    proc = subprocess.run([*iptflow_command(), "replay", "--json", *map(str, paths)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    summary = json.loads(proc.stdout)["summary"]  # nothing on stdout but the summary object
    assert (summary["files"], summary["unusable"]) == (len(paths), len(paths))
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == len(paths)
    for path, line in zip(paths, lines, strict=True):
        assert line.startswith(f"iptflow: error: {path}")


def test_usable_and_unusable_files_together_exit_2_and_print_the_usable(tmp_path):
    good = write_course(tmp_path / "good.jsonl", [opened("good")])
    bad = write_course(tmp_path / "bad.jsonl", ["[]"])
    code, out, err = run("replay", "--json", str(good), str(bad))
    assert code == 2
    *results, summary = out.splitlines()
    assert [json.loads(line)["course_id"] for line in results] == ["good"]
    assert json.loads(summary)["summary"] == {"files": 2, "passed": 1, "failed": 0, "unusable": 1,
                                              "events_accepted": 1, "events_rejected": 0}
    assert "bad.jsonl" in err
