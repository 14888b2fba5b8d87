"""The command line as a whole (docs/cli.md): every command takes --json (or is documented as
not reporting), every --json output parses in its documented shape, every command with a
database takes --db and $IPTFLOW_DB, and the CLI's own inputs and outputs fail in one line.

Every command runs for real (click's CliRunner) on a store written by ``iptflow demo``.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from iptflow.cli import NOT_REPORTING, STREAMS, cli
from iptflow.cli.options import DB_ENV, DEFAULT_DB

ROOT = Path(__file__).resolve().parents[1]
CLI_DOC = ROOT / "docs" / "cli.md"
COURSE_FILE = ROOT / "tests" / "courses" / "base" / "deviations.course.jsonl"
def open_event(course_id: str) -> str:
    return json.dumps({"type": "course_opened", "at": "2025-01-06T09:00:00Z",
                       "course_id": course_id, "protocol": "ipt-depression"})


MEASURE = json.dumps({"type": "measure_recorded", "at": "2025-01-06T09:30:00Z",
                      "instrument": "phq9", "score": 18})


def leaves(group: click.Group = cli, prefix: tuple[str, ...] = ()) -> dict[str, click.Command]:
    """Every command of the CLI that is not a group, by its full name (``course show``)."""
    out: dict[str, click.Command] = {}
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            out.update(leaves(command, (*prefix, name)))
        else:
            out[" ".join((*prefix, name))] = command
    return out


def option(command: click.Command, flag: str) -> click.Option | None:
    return next((p for p in command.params if isinstance(p, click.Option) and flag in p.opts), None)


def cases(tmp: Path) -> dict[str, list[str]]:
    """For every reporting command: arguments that run it successfully (the store is --db)."""
    return {
        "check": ["check", str(ROOT / "examples" / "variants" / "ipt-brief.toml"),
                  "--protocols-dir", str(ROOT / "examples" / "variants")],
        "course open": ["course", "open", open_event("j-2")],
        "course apply": ["course", "apply", "j-1", MEASURE],
        "course show": ["course", "show", "demo-001"],
        "course list": ["course", "list"],
        "course log": ["course", "log", "demo-001"],
        "course export": ["course", "export", "demo-001", "--out", str(tmp / "demo.jsonl")],
        "course import": ["course", "import", str(COURSE_FILE)],
        "course plot": ["course", "plot", "demo-001", "--out", str(tmp / "demo.svg")],
        "demo": ["demo"],
        "export fhir": ["export", "fhir", "demo-001", "--out", str(tmp / "bundle.json")],
        "export courses": ["export", "courses", "--format", "csv", "--out", str(tmp / "courses.csv")],
        "export events": ["export", "events", "--format", "jsonl", "--out", str(tmp / "events.jsonl")],
        "export measures": ["export", "measures", "--format", "parquet",
                            "--out", str(tmp / "measures.parquet")],
        "export deviations": ["export", "deviations", "--format", "csv",
                              "--out", str(tmp / "deviations.csv")],
        "generate": ["generate", "ipt-depression", "--random", "2", "--out", str(tmp / "gen")],
        "migrate": ["migrate", "--to", "ipt-depression@2.0.0", "--course", "demo-001"],
        "plugins": ["plugins"],
        "protocols": ["protocols"],
        "show": ["show", "ipt-depression"],
        "replay": ["replay", str(COURSE_FILE)],
        "report": ["report"],
        "simulate": ["simulate", "ipt-depression", "--n", "2"],
        "store copy": ["store", "copy", "--from", str(tmp / "store.db"), "--to", str(tmp / "copy.db")],
        "verify": ["verify"],
        "worklist": ["worklist", "--as-of", "2099-01-01T00:00:00Z"],
        "token create": ["token", "create", "--role", "clinician", "--actor", "dr-a"],
        "token list": ["token", "list"],
        "token revoke": ["token", "revoke", "TOKEN_ID"],  # the id of a token the test creates
    }


def invoke(args: list[str], env: dict[str, str] | None = None) -> Result:
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A store holding the demo course demo-001 (written by ``iptflow demo``) and j-1, opened."""
    db = tmp_path / "store.db"
    assert invoke(["demo", "--db", str(db)]).exit_code == 0
    assert invoke(["course", "open", open_event("j-1"), "--db", str(db)]).exit_code == 0
    return db


def with_db(name: str, args: list[str], db: Path) -> list[str]:
    return [*args, "--db", str(db)] if option(leaves()[name], "--db") else args


def parse(name: str, stdout: str) -> list[dict[str, object]]:
    """The --json output in its documented shape: one object on one line, or JSON Lines."""
    lines = stdout.splitlines()
    assert lines, f"{name}: nothing on stdout"
    objects = [json.loads(line) for line in lines]
    assert all(isinstance(o, dict) for o in objects), name
    if name not in STREAMS:
        assert len(lines) == 1, f"{name} printed {len(lines)} lines, not one object"
    return objects


def test_every_command_takes_json_or_is_documented_as_not_reporting(tmp_path: Path) -> None:
    commands = leaves()
    reporting = set(cases(tmp_path))
    assert set(commands) == reporting | set(NOT_REPORTING), "a command without a case here"
    doc = CLI_DOC.read_text(encoding="utf-8")
    for name, command in commands.items():
        assert f"### `iptflow {name}" in doc, f"docs/cli.md does not describe {name}"
        has_json = option(command, "--json") is not None
        assert has_json == (name not in NOT_REPORTING), name
    for name, reason in NOT_REPORTING.items():
        assert reason and name in doc.split("## Commands without --json", 1)[1].split("\n## ", 1)[0]
    assert reporting >= STREAMS


@pytest.mark.parametrize("name", sorted(cases(Path("."))))
def test_every_json_output_parses(name: str, store: Path, tmp_path: Path) -> None:
    args = cases(tmp_path)[name]
    if "TOKEN_ID" in args:
        created = invoke(["token", "create", "--role", "admin", "--actor", "a", "--json", "--db", str(store)])
        args = [json.loads(created.stdout)["id"] if a == "TOKEN_ID" else a for a in args]
    result = invoke(with_db(name, [*args, "--json"], store))
    assert result.exit_code == 0, result.output
    objects = parse(name, result.stdout)
    assert "Traceback" not in result.stderr
    if name == "course list":
        assert [o["id"] for o in objects] == ["demo-001", "j-1"]
    if name == "course log":
        assert [o["seq"] for o in objects] == list(range(1, len(objects) + 1))
    if name in ("course export", "export fhir", "course plot") or name.startswith("export "):
        assert Path(str(objects[0]["file"])).is_file()


def test_a_document_command_wants_out_for_json(store: Path) -> None:
    for args in (["course", "export", "demo-001"], ["export", "fhir", "demo-001"]):
        result = invoke([*args, "--json", "--db", str(store)])
        assert result.exit_code == 2 and "--json needs --out" in result.stderr
        assert result.stdout == ""


def test_show_json_is_format_json_and_refuses_another_format() -> None:
    assert invoke(["show", "ipt-depression", "--json"]).stdout == \
        invoke(["show", "ipt-depression", "--format", "json"]).stdout
    both = invoke(["show", "ipt-depression", "--json", "--format", "mermaid"])
    assert both.exit_code == 2 and both.stdout == ""


# -- --db and $IPTFLOW_DB ----------------------------------------------------------------------

def test_every_db_option_is_the_shared_one() -> None:
    with_db_option = {n: option(c, "--db") for n, c in leaves().items() if option(c, "--db")}
    assert {"report", "simulate", "verify", "demo", "course show", "export fhir"} <= set(with_db_option)
    for name, opt in with_db_option.items():
        assert (opt.envvar, opt.default, opt.required) == (DB_ENV, DEFAULT_DB, False), name


def test_every_db_command_honours_iptflow_db(store: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    all_cases = cases(tmp_path)
    db_commands = [n for n, c in leaves().items() if option(c, "--db")]
    for name in db_commands:
        if name == "serve":  # runs until stopped: test_service_process starts it from $IPTFLOW_DB
            continue
        args = all_cases[name]
        if "TOKEN_ID" in args:
            created = invoke(["token", "create", "--role", "admin", "--actor", "a", "--json"],
                             env={DB_ENV: str(store)})
            args = [json.loads(created.stdout)["id"] if a == "TOKEN_ID" else a for a in args]
        result = invoke(args, env={DB_ENV: str(store)})
        assert result.exit_code == 0, (name, result.output)
    assert list(elsewhere.iterdir()) == []  # no ./iptflow.db: every command used $IPTFLOW_DB
    ids = {row[0] for row in sqlite3.connect(store).execute("SELECT id FROM courses")}
    assert {"demo-001", "demo-002", "j-1", "j-2"} <= ids  # demo and course open wrote there
    assert len(ids) == 4 + 1 + 2  # and the imported course file and the two simulated courses


# -- replay of several files -------------------------------------------------------------------

def _replay_files(tmp_path: Path) -> list[str]:
    good = tmp_path / "good.jsonl"
    shutil.copy(COURSE_FILE, good)
    failing = tmp_path / "failing.jsonl"
    failing.write_text(COURSE_FILE.read_text(encoding="utf-8")
                       + '{"expect": {"state": "completed"}}\n', encoding="utf-8")
    unusable = tmp_path / "unusable.jsonl"
    unusable.write_text("[]\n", encoding="utf-8")
    return [str(good), str(failing), str(unusable)]


def test_replay_of_several_files_ends_with_a_summary_line(tmp_path: Path) -> None:
    result = invoke(["replay", *_replay_files(tmp_path)])
    assert result.exit_code == 2
    single = json.loads(invoke(["replay", str(COURSE_FILE), "--json"]).stdout)
    accepted, rejected = single["accepted"], len(single["rejected"])
    assert result.stdout.splitlines()[-1] == (
        f"summary: 3 files, 1 passed, 1 failed, 1 unusable; {2 * accepted} events accepted, "
        f"{2 * rejected} rejected")
    one = invoke(["replay", str(COURSE_FILE)])
    assert "summary:" not in one.stdout and one.stdout.splitlines()[-1] == "PASS"


def test_replay_json_of_several_files_ends_with_a_summary_object(tmp_path: Path) -> None:
    result = invoke(["replay", *_replay_files(tmp_path), "--json"])
    *results, last = parse("replay", result.stdout)
    assert [r["course_id"] for r in results] == ["base-deviations"] * 2
    assert last == {"summary": {
        "files": 3, "passed": 1, "failed": 1, "unusable": 1,
        "events_accepted": sum(int(str(r["accepted"])) for r in results),
        "events_rejected": sum(len(r["rejected"]) for r in results),  # type: ignore[arg-type]
    }}
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1


def test_progress_bars_go_to_stderr_only(tmp_path: Path, store: Path) -> None:
    files = _replay_files(tmp_path)[:2]
    quiet = invoke(["replay", *files, "--json"])
    shown = invoke(["replay", *files, "--json", "--progress"])
    assert shown.stdout == quiet.stdout and "replaying" in shown.stderr
    assert "replaying" not in quiet.stderr  # stderr is not a terminal under the test runner
    report = invoke(["report", "--db", str(store), "--json", "--progress"])
    assert "reporting" in report.stderr and json.loads(report.stdout)["courses"] == 2
    imported = invoke(["course", "import", *files, "--db", str(tmp_path / "i.db"), "--progress"])
    assert "importing" in imported.stderr


# -- the CLI's own inputs and outputs ----------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["report", "--html", "{missing}/report.html"],
    ["export", "fhir", "demo-001", "--out", "{missing}/bundle.json"],
    ["course", "export", "demo-001", "--out", "{missing}/demo.jsonl"],
    ["course", "plot", "demo-001", "--out", "{missing}/demo.svg"],
])
def test_an_unwritable_output_is_one_line_exit_2_and_nothing_written(
        args: list[str], store: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    before = sorted(tmp_path.rglob("*"))
    argv = [a.format(missing=out_dir / "no-such-dir") for a in args]
    result = invoke([*argv, "--db", str(store), "--json"])
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("iptflow: error: cannot write "), lines
    assert sorted(tmp_path.rglob("*")) == before


def test_a_nonexistent_protocols_dir_is_exit_2_for_every_command(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-dir")
    runs = {
        "check": ["check", str(ROOT / "protocols" / "ipt-depression" / "2.0.0.toml")],
        "generate": ["generate", "ipt-depression", "--random", "1", "--out", str(tmp_path / "g")],
        "migrate": ["migrate", "--to", "ipt-depression@2.0.0"],
        "protocols": ["protocols"],
        "show": ["show", "ipt-depression"],
        "replay": ["replay", str(COURSE_FILE)],
        "simulate": ["simulate", "ipt-depression", "--n", "1", "--db", str(tmp_path / "s.db")],
    }
    assert set(runs) == {n for n, c in leaves().items() if option(c, "--protocols-dir")}
    for name, args in runs.items():
        result = invoke([*args, "--protocols-dir", missing])
        assert result.exit_code == 2, name
        assert result.stderr == f"iptflow: error: --protocols-dir {missing}: no such directory\n"
        assert result.stdout == ""
    assert not (tmp_path / "g").exists() and not (tmp_path / "s.db").exists()


def test_protocols_reports_unreadable_protocol_files(tmp_path: Path) -> None:
    shutil.copy(ROOT / "examples" / "variants" / "ipt-brief.toml", tmp_path / "ipt-brief.toml")
    (tmp_path / "broken.toml").write_text('id = "broken"\nversion = [\n', encoding="utf-8")
    (tmp_path / "latin1.toml").write_bytes(b'id = "caf\xe9"\n')
    text = invoke(["protocols", "--protocols-dir", str(tmp_path)])
    assert text.exit_code == 1
    problems = [line for line in text.stdout.splitlines() if line.startswith("PROBLEM ")]
    assert [p.split(":", 1)[0] for p in problems] == [
        f"PROBLEM {tmp_path / 'broken.toml'}", f"PROBLEM {tmp_path / 'latin1.toml'}"]
    assert any(line.startswith("ipt-brief ") for line in text.stdout.splitlines())
    as_json = invoke(["protocols", "--protocols-dir", str(tmp_path), "--json"])
    data = json.loads(as_json.stdout)
    assert as_json.exit_code == 1 and len(data["problems"]) == 2
    assert "ipt-brief" in [p["id"] for p in data["protocols"]]
    clean = invoke(["protocols", "--json"])
    assert clean.exit_code == 0 and json.loads(clean.stdout)["problems"] == []


def test_a_lone_surrogate_in_a_rejection_is_printed_escaped(tmp_path: Path) -> None:
    course = tmp_path / "surrogate.jsonl"
    lines = COURSE_FILE.read_text(encoding="utf-8").splitlines()
    # json.dumps writes the lone surrogate as the JSON escape \ud800: a valid course file line
    lines.insert(1, json.dumps({"type": "\ud800x", "at": "2025-01-06T09:05:00Z"}))
    course.write_text("\n".join(lines) + "\n", encoding="utf-8")
    text = invoke(["replay", str(course)])
    assert text.exit_code == 1  # the event is rejected unexpectedly: no UnicodeEncodeError
    assert "\\ud800x" in text.stdout  # the type, escaped
    assert "REJECTED invalid_event: type: holds a lone surrogate ('\\ud800')" in text.stdout
    as_json = invoke(["replay", str(course), "--json"])
    rejected = json.loads(as_json.stdout)["rejected"]
    assert rejected[0]["type"] == "\ud800x"  # escaped on output, the JSON still round-trips


def test_every_command_prints_through_the_shared_output_module() -> None:
    for path in (ROOT / "iptflow" / "cli").glob("*.py"):
        if path.name != "output.py":
            assert "click.echo" not in path.read_text(encoding="utf-8"), path.name
