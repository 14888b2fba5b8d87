"""The store's bulk paths (issue 16): ``Store.apply`` on a course the store has cached writes
without reading the course row first, and must still see every other writer; imports of many
files at once. On a SQLite file and on a real PostgreSQL server (``store_url``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from store_support import db_content, measure_for_seq, opened

from iptflow.store.api import CourseExists, ImportRefused, Store
from iptflow.store.importing import MIN_PARALLEL


@pytest.fixture
def db(store_url: str) -> str:
    return store_url


def test_a_cached_course_sees_the_other_writer_before_answering(db: str):
    with Store.open(db) as a, Store.open(db) as b:
        assert a.open_course(opened()).ok
        assert a.apply("c-001", measure_for_seq(2), expected_seq=1).seq == 2  # a caches it at 2
        assert b.apply("c-001", measure_for_seq(3), idempotency_key="k3").seq == 3
        stale = a.apply("c-001", measure_for_seq(4), expected_seq=2)
        assert stale.code == "conflict" and "at event 3" in stale.message
        # the same key and event b stored: b's answer, nothing stored twice
        again = a.apply("c-001", measure_for_seq(3), idempotency_key="k3")
        assert again.ok and again.seq == 3
        assert a.apply("c-001", measure_for_seq(4), expected_seq=3).seq == 4
        assert b.apply("c-001", measure_for_seq(5)).seq == 5
        assert a.apply("c-001", measure_for_seq(6)).seq == 6  # a's cache was at 4
        assert [e.seq for e in a.history("c-001")] == [1, 2, 3, 4, 5, 6]
        assert a.get("c-001").snapshot() == b.get("c-001").snapshot()
        assert a.verify().ok


def test_a_rejection_on_a_cached_course_writes_nothing_and_keeps_the_cache_usable(db: str):
    with Store.open(db) as store:
        assert store.open_course(opened()).ok
        assert store.apply("c-001", measure_for_seq(2)).seq == 2
        rejected = store.apply("c-001", {"type": "treatment_started", "at": "2025-01-06T12:00:00Z"})
        assert not rejected.ok
        assert store.apply("c-001", measure_for_seq(3), expected_seq=2).seq == 3
        assert store.row("c-001").last_seq == 3 and store.verify().ok


def _course_files(directory: Path, n: int, bad: int | None = None) -> list[str]:
    files = []
    for i in range(n):
        events = [opened(f"c-{i:03d}"), measure_for_seq(2, score=10 + i % 7),
                  measure_for_seq(3, score=9)]
        if i == bad:  # a session before treatment started: rejected unexpectedly
            events.append({"type": "session_held", "at": "2025-01-06T12:00:00Z"})
        path = directory / f"c-{i:03d}.jsonl"
        path.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
        files.append(str(path))
    return files


def test_import_with_worker_processes_stores_what_one_process_stores(tmp_path: Path):
    files = _course_files(tmp_path, MIN_PARALLEL + 5)
    stores = {}
    for workers in (1, 2):
        db = tmp_path / f"w{workers}.db"
        with Store.open(db, clock=None) as store:
            results = store.import_course_files(files, workers=workers)
            assert [r.file for r in results] == files
            assert store.verify().ok
        stores[workers] = {k: v for k, v in db_content(db).items() if k != "_sqlite_migrations"}
    assert stores[1] == stores[2] and stores[1]["events"][0] == 3 * len(files)


def test_import_with_workers_names_the_first_refused_file_and_stores_nothing(store_url, tmp_path):
    files = _course_files(tmp_path, MIN_PARALLEL + 5, bad=MIN_PARALLEL - 3)
    with Store.open(store_url) as store:
        with pytest.raises(ImportRefused) as caught:
            store.import_course_files(files, workers=2)
        assert caught.value.message.startswith(f"{files[MIN_PARALLEL - 3]}: not imported")
        assert store.list() == []
        with pytest.raises(CourseExists, match="c-001.jsonl: course c-001 is given twice"):
            store.import_course_files([*files[:3], files[1]], workers=2)
        store.import_course_files(files[:2])
        good = files[:MIN_PARALLEL - 3] + files[MIN_PARALLEL - 2:]
        with pytest.raises(CourseExists, match="c-001.jsonl: course c-001 is already in"):
            store.import_course_files(good[1:], workers=2)
        assert [r.id for r in store.list()] == ["c-000", "c-001"]
