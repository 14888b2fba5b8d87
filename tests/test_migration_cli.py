"""``iptflow migrate`` (plan and apply, --json, exit status), the audit log's migration records,
and ``iptflow replay --protocol`` (docs/cli.md, docs/migration.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from test_migration import CHANGING, CLEAN, DIVERGING

from iptflow.cli import cli
from iptflow.store import Store

V2 = "ipt-depression@2.0.0"
AT = "2025-06-01T09:00:00Z"
VARIANT = Path(__file__).parents[1] / "examples" / "variants" / "ipt-brief.toml"


def run(*args: str) -> Result:
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "clinic.db"
    with Store.open(path) as store:
        store.import_many([CLEAN, CHANGING, DIVERGING])
    return path


def test_a_dry_run_prints_the_plan_and_writes_nothing(db: Path) -> None:
    before = db.read_bytes()
    result = run("migrate", "--db", str(db), "--to", V2, "--json")
    assert result.exit_code == 1  # some course would stay where it is
    data = json.loads(result.stdout)
    assert result.stdout.count("\n") == 1
    assert (data["applied"], data["outcomes"]) == (False, None)
    assert data["classes"] == {"clean": 1, "changes": 1, "diverges": 1, "current": 0,
                               "unresolved": 0}
    by_id = {c["course_id"]: c for c in data["courses"]}
    assert by_id["ipt-a-complete"]["divergence"]["type"] == "course_completed"
    assert by_id["ipt-a-complete"]["divergence"]["code"] == "guard_failed"
    assert by_id["b-changes"]["differences"] == [
        {"field": "facts.open_reviews", "before": [], "after": ["risk"]}]
    assert by_id["a-clean"]["to"]["version"] == "2.0.0"
    assert db.read_bytes() == before
    text = run("migrate", "--db", str(db), "--to", V2)
    assert "ipt-a-complete" in text.stdout and "course_completed is rejected guard_failed" in text.stdout
    assert "facts.open_reviews: [] -> [\"risk\"]" in text.stdout
    assert "dry run: nothing was written" in text.stdout
    # only the clean course: everything selected would move
    assert run("migrate", "--db", str(db), "--to", V2, "--course", "a-clean").exit_code == 0


def test_apply_migrates_records_and_verifies(db: Path) -> None:
    result = run("migrate", "--db", str(db), "--to", V2, "--apply", "--actor", "dr-a", "--at", AT,
                 "--reason", "clinic moves to 2.0.0", "--json")
    assert result.exit_code == 1  # the diverging and the changing course stayed
    data = json.loads(result.stdout)
    assert data["applied"] is True
    assert data["outcomes"] == {"migrated": 1, "current": 0, "stayed": 2, "changed": 0}
    record = next(c for c in data["courses"] if c["course_id"] == "a-clean")["record"]
    assert (record["type"], record["actor"], record["at"], record["reason"], record["after_seq"]) == (
        "protocol_migrated", "dr-a", AT, "clinic moves to 2.0.0", 3)
    again = run("migrate", "--db", str(db), "--to", V2, "--apply", "--actor", "dr-a", "--at", AT,
                "--accept-changes", "--course", "a-clean", "--course", "b-changes", "--json")
    assert again.exit_code == 0
    assert json.loads(again.stdout)["outcomes"] == {"migrated": 1, "current": 1, "stayed": 0,
                                                    "changed": 0}
    assert run("verify", "--db", str(db)).exit_code == 0
    log = run("course", "log", "a-clean", "--db", str(db), "--verify")
    assert log.exit_code == 0
    lines = log.stdout.splitlines()
    assert "protocol_migrated" in lines[3] and "by dr-a" in lines[3]
    assert "ipt-depression 1.0.0 -> ipt-depression 2.0.0 (clean): clinic moves to 2.0.0" in lines[4]
    stream = [json.loads(line) for line in
              run("course", "log", "a-clean", "--db", str(db), "--json").stdout.splitlines()]
    assert [o["type"] for o in stream] == ["course_opened", "measure_recorded",
                                           "diagnosis_confirmed", "protocol_migrated"]
    listed = run("course", "list", "--db", str(db), "--protocol", V2, "--json").stdout
    assert [json.loads(line)["id"] for line in listed.splitlines()] == ["a-clean", "b-changes"]


@pytest.mark.parametrize("args, message", [
    (["--to", V2, "--apply"], "--apply needs --actor"),
    (["--to", V2, "--variant", str(VARIANT)], "exactly one of"),
    ([], "exactly one of"),
    (["--to", "ipt-depression@9"], "unknown version '9'"),
    (["--to", V2, "--course", "nobody"], "no course 'nobody'"),
    (["--to", V2, "--apply", "--actor", "dr-a", "--at", "tomorrow"], "ISO 8601"),
])
def test_unusable_input_is_exit_2_and_writes_nothing(db: Path, args: list[str], message: str) -> None:
    before = db.read_bytes()
    result = run("migrate", "--db", str(db), *args)
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.output
    assert db.read_bytes() == before


def test_a_missing_database_is_exit_2(tmp_path: Path) -> None:
    result = run("migrate", "--db", str(tmp_path / "none.db"), "--to", V2)
    assert result.exit_code == 2 and "no database" in result.stderr
    assert not (tmp_path / "none.db").exists()


def test_a_variant_file_is_a_target(db: Path, tmp_path: Path) -> None:
    variant = tmp_path / "brief.toml"
    variant.write_text('id = "ipt-brief2"\nversion = "1.0.0"\ntitle = "Brief"\n'
                       'extends = "ipt-depression@2.0.0"\nsession_range = { min = 8, max = 8 }\n',
                       encoding="utf-8")
    result = run("migrate", "--db", str(db), "--variant", str(variant), "--course", "a-clean",
                 "--json")
    assert result.exit_code == 0, result.output
    [course] = json.loads(result.stdout)["courses"]
    assert (course["class"], course["to"]["id"], course["to"]["version"]) == ("clean", "ipt-brief2",
                                                                              "1.0.0")


def test_replay_under_another_protocol(tmp_path: Path) -> None:
    diverging = run("replay", "--protocol", V2, "--json", str(DIVERGING))
    assert diverging.exit_code == 1
    data = json.loads(diverging.stdout)
    assert data["protocol"]["version"] == "2.0.0"
    assert data["protocol"]["adaptations"] == ["adolescent"]  # the file's adaptations are kept
    assert any(r["type"] == "course_completed" and "ending_discussed" in r["guards"]
               for r in data["rejected"])
    assert json.loads(run("replay", "--json", str(DIVERGING)).stdout)["protocol"]["version"] == "1.0.0"
    clean = tmp_path / "clean.jsonl"
    clean.write_text("".join(json.dumps(e) + "\n" for e in CLEAN), encoding="utf-8")
    result = run("replay", "--protocol", V2, str(clean), str(DIVERGING))
    assert result.exit_code == 1
    assert "ipt-depression 2.0.0" in result.stdout and "summary: 2 files, 1 passed, 1 failed" in result.stdout
    assert run("replay", "--protocol", V2, str(clean)).exit_code == 0
    unknown = run("replay", "--protocol", "ipt-depression@9", str(clean))
    assert unknown.exit_code == 2 and "unknown version" in unknown.stderr
