"""Load from a second process against a real ``iptflow serve``: 8 clients x 200 appends over
40 courses (every tenth append retried with its Idempotency-Key), on SQLite with one worker
and on PostgreSQL with ``--workers 2``. No event is lost, stored twice or reordered, every
answer's seq is the stored one, and ``iptflow verify`` passes. Bounded in count and time
(each run well under a minute here; the subprocess is given four)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from pg_support import PgServer
from service_process import Server, cli, new_token

from iptflow.research.demo import demo_events
from iptflow.store import Store

CLIENTS, APPENDS, COURSES = 8, 200, 40
LOAD_CLIENT = Path(__file__).parent / "service_load_client.py"


def _prepare(db: str) -> str:
    with Store.open(db) as store:
        for n in range(COURSES):
            opened = {**demo_events(f"load-{n:03d}")[0], "actor": "clinician-7"}
            assert store.open_course(opened).ok
    return new_token(db, "clinician", "clinician-7")["secret"]


def _load(db: str, tmp_path: Path, *serve_args: str) -> None:
    secret = _prepare(db)
    server = Server(db, tmp_path / "serve.log", *serve_args)
    try:
        run = subprocess.run(
            [sys.executable, str(LOAD_CLIENT), server.base, secret, str(CLIENTS), str(APPENDS),
             str(COURSES)], capture_output=True, text=True, timeout=240,
        )
    finally:
        server.stop()
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["failures"] == []
    answers = result["answers"]
    assert len(answers) == CLIENTS * APPENDS
    for key, retry in result["retries"].items():
        assert retry == answers[key], key  # the retry got the original answer
    with Store.open(db, readonly=True) as store:
        stored = {}
        for n in range(COURSES):
            history = store.history(f"load-{n:03d}")
            assert [e.seq for e in history] == list(range(1, len(history) + 1))
            for event in history[1:]:
                assert event.idempotency_key not in stored  # never stored twice
                stored[event.idempotency_key] = {"course": event.course_id, "seq": event.seq}
        assert stored == answers  # nothing lost, nothing extra, each where its answer said
        assert store.verify().ok
    for c in range(CLIENTS):  # each client's appends to a course are stored in the order sent
        for n in range(COURSES):
            seqs = [answers[f"k-{c}-{i}"]["seq"] for i in range(APPENDS)
                    if answers[f"k-{c}-{i}"]["course"] == f"load-{n:03d}"]
            assert seqs == sorted(seqs)
    verify = cli("verify", db=db)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "Traceback" not in server.log()


def test_load_on_sqlite(tmp_path: Path) -> None:
    _load(str(tmp_path / "load.db"), tmp_path)


def test_load_on_postgresql_with_two_workers(pg_server: PgServer, tmp_path: Path) -> None:
    _load(pg_server.fresh_url(), tmp_path, "--workers", "2")
