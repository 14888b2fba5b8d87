"""``course import --batch N`` and ``Store.import_course_files``: one transaction per batch, all of
it or none, the refused file named; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from iptflow.cli import cli
from iptflow.errors import CourseFileError
from iptflow.store.api import CourseExists, ImportRefused, Store


def course_file(directory: Path, course_id: str, *, broken: str = "") -> str:
    events = [
        {"type": "course_opened", "at": "2025-01-06T09:00:00Z", "course_id": course_id,
         "protocol": "ipt-depression"},
        {"type": "measure_recorded", "at": "2025-01-06T09:10:00Z", "instrument": "phq9", "score": 14},
    ]
    if broken == "rejected":  # a session before treatment started: rejected unexpectedly
        events.append({"type": "session_held", "at": "2025-01-06T10:00:00Z"})
    text = "".join(json.dumps(e) + "\n" for e in events)
    if broken == "unusable":
        text += "{not json\n"
    path = directory / f"{course_id}.jsonl"
    path.write_text(text)
    return str(path)


def test_a_batch_is_stored_whole(store_url, tmp_path):
    files = [course_file(tmp_path, f"c-{i}") for i in range(5)]
    with Store.open(store_url, clock=None) as store:
        results = store.import_course_files(files)
        assert [r.course_id for r in results] == [f"c-{i}" for i in range(5)]
        assert [r.file for r in results] == files and {r.events for r in results} == {2}
        assert [r.id for r in store.list()] == [f"c-{i}" for i in range(5)]
        assert store.verify().ok


@pytest.mark.parametrize("broken,error", [("rejected", ImportRefused), ("unusable", CourseFileError),
                                          ("twice", CourseExists)])
def test_a_refused_file_stores_nothing_of_its_batch_and_is_named(store_url, tmp_path, broken, error):
    files = [course_file(tmp_path, f"c-{i}") for i in range(4)]
    bad = files[0] if broken == "twice" else course_file(tmp_path, "c-bad", broken=broken)
    with Store.open(store_url, clock=None) as store:
        with pytest.raises(error) as caught:
            store.import_course_files([*files[:2], bad, *files[2:]])
        assert Path(bad).name in str(caught.value)
        assert store.list() == []
        store.import_course_files(files[:1])
        with pytest.raises(CourseExists, match="c-0.jsonl: course c-0 is already in"):
            store.import_course_files(files)
        assert [r.id for r in store.list()] == ["c-0"]


def test_cli_batches_are_atomic_and_the_others_go_in(tmp_path):
    db = tmp_path / "s.db"
    files = [course_file(tmp_path, f"c-{i}") for i in range(7)]
    bad = course_file(tmp_path, "c-bad", broken="rejected")
    args = ["course", "import", *files[:4], bad, *files[4:], "--batch", "3", "--db", str(db), "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    imported = [json.loads(line)["course_id"] for line in result.stdout.splitlines()]
    assert imported == ["c-0", "c-1", "c-2", "c-5", "c-6"]  # batch 2 (c-3, c-bad, c-4) held back whole
    assert f"{bad}: not imported" in result.stderr
    assert f"nothing of its batch of 3 files was imported ({files[3]} .. {files[4]})" in result.stderr
    ids = [r[0] for r in sqlite3.connect(db).execute("SELECT id FROM courses ORDER BY id")]
    assert ids == ["c-0", "c-1", "c-2", "c-5", "c-6"]
    unusable = course_file(tmp_path, "c-unusable", broken="unusable")
    again = CliRunner().invoke(cli, ["course", "import", files[3], unusable, "--batch", "2",
                                     "--db", str(db)])
    assert again.exit_code == 2 and "c-unusable.jsonl" in again.stderr and "Traceback" not in again.output


def test_cli_batch_of_one_is_the_file_by_file_import(tmp_path):
    db = tmp_path / "s.db"
    files = [course_file(tmp_path, f"c-{i}") for i in range(3)]
    bad = course_file(tmp_path, "c-bad", broken="rejected")
    result = CliRunner().invoke(cli, ["course", "import", files[0], bad, *files[1:], "--db", str(db)])
    assert result.exit_code == 1
    assert result.stdout.count("imported c-") == 3 and "nothing of its batch" not in result.stderr
