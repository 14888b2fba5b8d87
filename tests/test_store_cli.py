"""``iptflow course ...``, ``iptflow verify`` and ``iptflow demo``: output, exit codes, and one-line
errors (never a traceback) for a user's mistakes."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from store_support import measure_for_seq, opened

from iptflow.cli import cli
from iptflow.research.demo import demo_events
from iptflow.store.api import Store


def run(*args: str, input: str | None = None):
    result = CliRunner().invoke(cli, list(args), input=input)
    assert "Traceback" not in result.output
    if result.exception is not None:
        assert isinstance(result.exception, SystemExit), repr(result.exception)
    return result


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "cli.db")


def test_open_apply_show_list_log(db: str):
    r = run("course", "open", json.dumps(opened()), "--db", db)
    assert r.exit_code == 0 and "c-001" in r.output
    r = run("course", "apply", "c-001", "--db", db, "--json", input=json.dumps(measure_for_seq(2)))
    assert r.exit_code == 0
    assert json.loads(r.output)["accepted"]["seq"] == 2
    r = run("course", "apply", "c-001", json.dumps(measure_for_seq(3)), "--expected-seq", "2",
            "--idempotency-key", "k-3", "--db", db)
    assert r.exit_code == 0 and "event 3 measure_recorded accepted" in r.output

    r = run("course", "show", "c-001", "--db", db, "--json")
    shown = json.loads(r.output)
    assert (shown["state"], shown["seq"]) == ("assessment", 3)
    assert "treatment_started" in shown["allowed_events"]
    assert "diagnosis_indicated" in shown["unmet_requirements"]["treatment_started"]
    r = run("course", "show", "c-001", "--db", db)
    assert "state: assessment" in r.output and "treatment_started  (not yet:" in r.output

    r = run("course", "list", "--db", db, "--json")  # JSON Lines: one row per line
    assert [json.loads(line)["id"] for line in r.output.splitlines()] == ["c-001"]
    assert run("course", "list", "--state", "middle", "--db", db).output.strip() == "no courses"
    r = run("course", "log", "c-001", "--db", db, "--json")
    log = [json.loads(line) for line in r.output.splitlines()]  # JSON Lines: one event per line
    assert [e["seq"] for e in log] == [1, 2, 3] and log[2]["idempotency_key"] == "k-3"


def test_a_rejection_prints_its_json_exits_1_and_writes_nothing(db: str):
    run("course", "open", json.dumps(opened()), "--db", db)
    for args in (
        ["c-001", json.dumps({"type": "treatment_started", "at": "2025-01-07T09:00:00Z"})],
        ["c-001", json.dumps(measure_for_seq(2)), "--expected-seq", "7"],
        ["ghost", json.dumps(measure_for_seq(2))],
    ):
        r = run("course", "apply", *args, "--db", db)
        assert r.exit_code == 1
        assert json.loads(r.output)["rejected"]["code"] in {"guard_failed", "conflict", "no_course"}
    with Store.open(db) as store:
        assert store.row("c-001").last_seq == 1
    r = run("course", "open", json.dumps(opened()), "--db", db)
    assert r.exit_code == 1 and json.loads(r.output)["rejected"]["code"] == "conflict"


@pytest.mark.parametrize(
    "args, message",
    [
        (["course", "apply", "c-001", "{not json"], "not valid JSON"),
        (["course", "apply", "c-001", "[1, 2]"], "must be a JSON object"),
        (["course", "open", json.dumps(opened(protocol="nope"))], "unknown protocol"),
        (["course", "show", "ghost"], "no course 'ghost'"),
        (["course", "log", "ghost"], "no course 'ghost'"),
        (["course", "export", "ghost"], "no course 'ghost'"),
    ],
)
def test_bad_input_is_one_line_on_stderr_with_exit_2(db: str, args: list[str], message: str):
    run("course", "open", json.dumps(opened()), "--db", db)
    r = run(*args, "--db", db)
    assert r.exit_code == 2
    assert message in r.output and r.output.count("\n") == 1 and r.output.startswith("iptflow: error:")


@pytest.mark.parametrize(
    "args",
    [["course", "show", "c-1"], ["course", "list"], ["course", "log", "c-1"],
     ["course", "export", "c-1"], ["course", "apply", "c-1", "{}"], ["verify"]],
)
def test_read_commands_refuse_a_missing_database_and_create_none(tmp_path: Path, args: list[str]):
    path = tmp_path / "missing.db"
    r = run(*args, "--db", str(path))
    assert r.exit_code == 2 and "no database at" in r.output
    assert not path.exists()


def test_export_and_import(tmp_path: Path, db: str):
    with Store.open(db) as store:
        store.import_many([demo_events("d-1")])
    out = tmp_path / "d-1.jsonl"
    r = run("course", "export", "d-1", "--out", str(out), "--db", db)
    assert r.exit_code == 0 and out.exists()
    assert run("course", "export", "d-1", "--db", db).output == out.read_text()
    other = str(tmp_path / "other.db")
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{oops\n")
    r = run("course", "import", str(out), str(bad), "--db", other)
    assert r.exit_code == 2 and "imported d-1" in r.output and "bad.jsonl:1" in r.output
    r = run("course", "import", str(out), "--db", other, "--json")
    assert r.exit_code == 1 and "already in" in r.output
    r = run("course", "list", "--db", other, "--json")
    assert [json.loads(line)["id"] for line in r.output.splitlines()] == ["d-1"]


def test_verify_exit_codes_and_names_the_broken_event(db: str):
    with Store.open(db) as store:
        store.import_many([demo_events("d-1"), demo_events("d-2")])
    r = run("verify", "--db", db)
    assert r.exit_code == 0 and r.output.startswith("ok: 2 courses, 64 events")
    conn = sqlite3.connect(db)
    conn.execute("DROP TRIGGER events_no_update")
    conn.execute("UPDATE events SET body = replace(body, '\"score\":17', '\"score\":18') "
                 "WHERE course_id = 'd-2' AND seq = 2")
    conn.commit()
    conn.close()
    r = run("verify", "--db", db, "--json")
    assert r.exit_code == 1
    report = json.loads(r.output)
    assert [(p["course_id"], p["seq"], p["kind"]) for p in report["problems"]] == [("d-2", 2, "hash")]
    assert "BROKEN course d-2 event 2" in run("verify", "--db", db).output


def test_demo_stores_its_course_under_a_fresh_id(db: str):
    first = run("demo", "--db", db)
    assert first.exit_code == 0 and "stored as course demo-001" in first.output
    second = run("demo", "--db", db)
    assert "stored as course demo-002" in second.output
    with Store.open(db) as store:
        assert [r.id for r in store.list()] == ["demo-001", "demo-002"]
        assert store.get("demo-002").state == "completed"


def test_the_installed_command_reads_stdin_and_reports_rejections(db: str):
    exe = [str(Path(sys.executable).parent / "iptflow")]
    done = subprocess.run([*exe, "course", "open", "--db", db], input=json.dumps(opened()),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    done = subprocess.run([*exe, "course", "apply", "c-001", "--db", db],
                          input=json.dumps({"type": "sick_role_given", "at": "2025-01-07T09:00:00Z"}),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and json.loads(done.stdout)["rejected"]["code"] == "not_allowed"
    assert done.stderr == ""
