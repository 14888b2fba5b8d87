"""The PostgreSQL store on a real server (tests/pg_support.py): what only PostgreSQL has to
show (its schema and migrations, privileges, URLs) and the races, crashes and copies the
issue asks for, with real processes. The rest of the store's behaviour is the conformance
suite: tests/test_store.py and tests/test_store_reader.py run on both backends."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from pg_support import INTEGRITY_ERRORS, PgServer, content, execute
from store_support import db_content, measure_for_seq, opened

from iptflow.cli import cli
from iptflow.research.demo import demo_events
from iptflow.store import NewerSchema, NoDatabase, StoreError, StoreReadOnly
from iptflow.store.api import Store
from iptflow.store.migrations import KNOWN_MIGRATIONS
from iptflow.store.postgres_schema import MIGRATIONS
from iptflow.store.protocol_migration import apply_migration, plan_migration
from iptflow.store.urls import display_url, sqlite_path

fork = multiprocessing.get_context("fork")
AT = "2025-01-06T10:00:00Z"  # every appended measure has this time: any order is in order


@pytest.fixture
def url(pg_server: PgServer) -> str:
    return pg_server.fresh_url()


def _fill(store: Store, events: list[dict]) -> None:
    assert store.open_course(events[0]).ok
    for event in events[1:]:
        assert store.apply(events[0]["course_id"], event).ok


# -- schema, migrations, privileges ---------------------------------------------------------------
def test_every_migration_has_its_postgresql_twin_and_is_recorded(url: str):
    assert [name for name, _ in MIGRATIONS] == list(KNOWN_MIGRATIONS)
    with Store.open(url):
        pass
    rows = execute(url, "SELECT name FROM iptflow_migrations ORDER BY position")
    assert [r[0] for r in rows] == list(KNOWN_MIGRATIONS)
    with Store.open(url) as store:  # opening again applies nothing twice
        assert store.count() == 0
    assert len(execute(url, "SELECT name FROM iptflow_migrations")) == len(KNOWN_MIGRATIONS)


def test_a_schema_from_a_newer_release_is_refused(url: str):
    with Store.open(url):
        pass
    execute(url, "INSERT INTO iptflow_migrations (name, position) VALUES ('m999_future', 999)")
    with pytest.raises(NewerSchema, match="m999_future"):
        Store.open(url)


def test_events_are_append_only_even_for_truncate(url: str):
    with Store.open(url) as store:
        _fill(store, [opened(), measure_for_seq(2)])
    for sql in ("UPDATE events SET at = 'x'", "DELETE FROM events", "TRUNCATE events CASCADE"):
        with pytest.raises(INTEGRITY_ERRORS, match="append-only"):
            execute(url, sql)
    assert len(execute(url, "SELECT seq FROM events")) == 2


def test_a_role_without_update_or_delete_on_events_runs_the_store(url: str, pg_server: PgServer):
    """The privileges docs/deploy.md gives the application role are enough, and no more."""
    with Store.open(url):
        pass  # the owner creates the schema
    schema = url.rsplit("%3D", 1)[1]
    role = f"app_{schema}"
    for sql in (
        f"CREATE ROLE {role} LOGIN",
        f"GRANT USAGE ON SCHEMA {schema} TO {role}",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role}",
        f"GRANT INSERT ON {schema}.events, {schema}.protocols, {schema}.course_adaptations, "
        f"{schema}.simulation_runs, {schema}.course_migrations TO {role}",
        f"GRANT INSERT, UPDATE ON {schema}.courses, {schema}.snapshots TO {role}",
        f"GRANT DELETE ON {schema}.course_adaptations TO {role}",
    ):
        execute(url, sql)
    app_url = url.replace("postgresql://postgres@", f"postgresql://{role}@")
    with Store.open(app_url) as store:
        _fill(store, demo_events("c-app"))
        assert store.verify().ok
        with pytest.raises(StoreReadOnly, match="cannot be written by this role"), store.recorder.write():
            store.conn.execute("DELETE FROM events WHERE seq = 1")
        assert store.row("c-app").last_seq == len(demo_events("c-app"))


def test_read_only_opening_writes_nothing_and_refuses_writes(url: str):
    with Store.open(url) as store:
        _fill(store, [opened()])
    before = content(url)
    with Store.open(url, readonly=True) as store:
        assert store.get("c-001").state == "assessment"
        with pytest.raises(StoreReadOnly):
            store.apply("c-001", measure_for_seq(2))
    assert content(url) == before


def test_urls_name_what_is_wrong_and_never_print_a_password(pg_server: PgServer, tmp_path: Path):
    missing = pg_server.url("no_such_database")
    with pytest.raises(NoDatabase, match="no_such_database"):
        Store.open(missing)
    secret = f"postgresql://postgres:hunter2@127.0.0.1:{pg_server.port}/no_such_database"
    with pytest.raises(NoDatabase) as info:
        Store.open(secret)
    assert "hunter2" not in info.value.message and "***" in info.value.message
    assert display_url(secret).count("***") == 1
    with pytest.raises(StoreError, match="cannot reach the PostgreSQL server"):
        Store.open("postgresql://postgres@127.0.0.1:1/x", timeout=2)
    with pytest.raises(StoreError, match="not a store location"):
        Store.open("mysql://somewhere/db")
    assert sqlite_path("sqlite:///rel.db") == "rel.db" and sqlite_path("sqlite:////a/b.db") == "/a/b.db"
    with Store.open(f"sqlite:///{tmp_path}/via-url.db") as store:
        _fill(store, [opened()])
    assert (tmp_path / "via-url.db").exists()


# -- races and crashes, with real processes --------------------------------------------------------
def _writer(url: str, course_ids: list[str], count: int, name: str, fd: int) -> None:
    """Append ``count`` measures spread over ``course_ids``; after each commit, report
    ``course_id seq actor`` on the pipe."""
    with Store.open(url) as store:
        for i in range(count):
            course_id = course_ids[i % len(course_ids)]
            actor = f"{name}-{i}"
            event = {"type": "measure_recorded", "at": AT, "instrument": "phq9", "score": i % 28,
                     "actor": actor}
            result = store.apply(course_id, event)
            line = f"{course_id} {result.seq} {actor}" if result.ok else f"REJECTED {result.code}"
            os.write(fd, f"{line}\n".encode())
    os.close(fd)


def _race(url: str, per_writer: list[list[str]], count: int) -> list[tuple[str, int, str]]:
    children, pipes = [], []
    for k, course_ids in enumerate(per_writer):
        read_fd, write_fd = os.pipe()
        child = fork.Process(target=_writer, args=(url, course_ids, count, f"w{k}", write_fd))
        child.start()
        os.close(write_fd)
        children.append(child)
        pipes.append(read_fd)
    acks = []
    for child, fd in zip(children, pipes, strict=True):
        with os.fdopen(fd) as stream:
            lines = stream.read().split("\n")
        child.join()
        assert child.exitcode == 0
        for line in filter(None, lines):
            assert not line.startswith("REJECTED"), line
            course_id, seq, actor = line.split()
            acks.append((course_id, int(seq), actor))
    return acks


def _check_race(url: str, acks: list[tuple[str, int, str]]) -> None:
    with Store.open(url) as store:
        assert store.verify().ok
        for course_id in sorted({a[0] for a in acks}):
            history = store.history(course_id)
            assert [h.seq for h in history] == list(range(1, len(history) + 1))  # no gap, no twin
            stored = {(course_id, h.seq, h.actor) for h in history[1:]}
            mine = {a for a in acks if a[0] == course_id}
            assert mine == stored  # every acknowledged append is there, and nothing else


@pytest.mark.parametrize("shape", ["one course", "distinct courses"])
def test_four_processes_append_250_events_each(url: str, shape: str):
    ids = ["shared"] if shape == "one course" else [f"own-{k}" for k in range(4)]
    with Store.open(url) as store:
        for course_id in ids:
            assert store.open_course(opened(course_id)).ok
    per_writer = [ids] * 4 if shape == "one course" else [[i] for i in ids]
    acks = _race(url, per_writer, 250)
    assert len(acks) == 1000
    _check_race(url, acks)


def _appender(url: str, fd: int) -> None:
    store = Store.open(url)
    n = 0
    while True:
        n += 1
        result = store.apply("c-001", {"type": "measure_recorded", "at": AT, "instrument": "phq9",
                                        "score": n % 28})
        os.write(fd, f"{result.seq if result.ok else 'REJECTED'}\n".encode())


def test_sigkill_of_a_writer_mid_append_loses_no_acknowledged_event(url: str):
    with Store.open(url) as store:
        assert store.open_course(opened()).ok
    rng = random.Random(14)
    acknowledged: list[int] = []
    for _ in range(8):
        read_fd, write_fd = os.pipe()
        child = fork.Process(target=_appender, args=(url, write_fd))
        child.start()
        os.close(write_fd)
        first = os.read(read_fd, 65536)  # it is appending
        time.sleep(rng.uniform(0.0, 0.1))
        os.kill(child.pid, signal.SIGKILL)
        child.join()
        chunks = [first]
        while chunk := os.read(read_fd, 65536):
            chunks.append(chunk)
        os.close(read_fd)
        lines = b"".join(chunks).decode().split()
        assert child.exitcode == -signal.SIGKILL and "REJECTED" not in lines
        acknowledged += [int(line) for line in lines]
    assert acknowledged == sorted(set(acknowledged)) and len(acknowledged) >= 8
    with Store.open(url) as store:
        last = store.row("c-001").last_seq
        assert set(acknowledged) <= set(range(2, last + 1))  # at most the one in flight is more
        assert last - max(acknowledged) <= 1
        assert store.verify().ok


# -- moving a store ---------------------------------------------------------------------------------
def test_store_copy_sqlite_to_postgresql_to_sqlite_is_identical(url: str, tmp_path: Path):
    first, back = str(tmp_path / "clinic.db"), str(tmp_path / "back.db")
    with Store.open(first) as store:
        for k in range(3):
            _fill(store, demo_events(f"demo-{k}"))
        teen = opened("teen-1", adaptations=["adolescent"], patient={"age": 15})
        assert store.open_course(teen, idempotency_key="open-teen").ok
        assert store.apply("teen-1", measure_for_seq(2), idempotency_key="visit-1").ok
        store.record_simulation_run(protocol="ipt-depression", adaptations=[], fingerprint="sha256:x",
                                    n=3, seed=1, model={"a": 1})
    runner = CliRunner()
    there = runner.invoke(cli, ["store", "copy", "--from", first, "--to", url, "--json"])
    assert there.exit_code == 0, there.output
    report = json.loads(there.output)
    assert report["ok"] and report["rows"]["courses"] == 4 and report["rows"]["simulation_runs"] == 1
    again = runner.invoke(cli, ["store", "copy", "--from", url, "--to", back])
    assert again.exit_code == 0, again.output
    assert again.output.startswith("copied: 4 courses") and "the copy verifies" in again.output
    assert db_content(back) | {"_sqlite_migrations": None} == db_content(first) | {"_sqlite_migrations": None}
    with Store.open(first) as a, Store.open(url) as b:
        assert [(r.id, r.last_hash) for r in a.list()] == [(r.id, r.last_hash) for r in b.list()]
        assert [h.hash for h in a.history("teen-1")] == [h.hash for h in b.history("teen-1")]
        assert b.apply("teen-1", measure_for_seq(2), idempotency_key="visit-1").seq == 2  # keys too
    refused = runner.invoke(cli, ["store", "copy", "--from", first, "--to", url])
    assert refused.exit_code == 2 and "not empty" in refused.output


def test_every_db_command_takes_a_url(url: str, tmp_path: Path):
    path = tmp_path / "demo-1.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in demo_events("demo-1")))
    runner = CliRunner()
    imported = runner.invoke(cli, ["course", "import", str(path), "--db", url])
    assert imported.exit_code == 0, imported.output
    shown = runner.invoke(cli, ["course", "show", "demo-1", "--json"], env={"IPTFLOW_DB": url})
    assert shown.exit_code == 0 and json.loads(shown.output)["state"] == "completed"
    verified = runner.invoke(cli, ["verify", "--db", url])
    assert verified.exit_code == 0 and verified.output.startswith("ok: 1 courses")
    exported = runner.invoke(cli, ["course", "export", "demo-1", "--db", url])
    assert exported.exit_code == 0
    assert [json.loads(line)["type"] for line in exported.output.splitlines()] == [
        e["type"] for e in demo_events("demo-1")]
    gone = runner.invoke(cli, ["verify", "--db", url.replace("iptflow_test", "nowhere")])
    assert gone.exit_code == 2 and "Traceback" not in gone.output


def test_protocol_migration_by_replay_on_postgresql_and_its_records_copy(url: str, tmp_path: Path):
    """Engineer J's migration (iptflow.store.protocol_migration) on PostgreSQL: the record joins
    the chain, verify passes, and store copy carries the record to SQLite with its hash."""
    clean = [opened("a-clean"),
             {"type": "measure_recorded", "at": "2025-01-06T09:30:00Z", "instrument": "phq9",
              "score": 19, "items": [3, 3, 2, 2, 2, 2, 2, 3, 0]},
             {"type": "diagnosis_confirmed", "at": "2025-01-06T09:45:00Z",
              "diagnosis": "major_depressive_disorder"}]
    with Store.open(url) as store:
        store.import_many([clean])
        plan = plan_migration(store, "ipt-depression@2.0.0")
        report = apply_migration(store, plan, actor="dr-a", at="2025-02-01T09:00:00Z",
                                 reason="clinic moves to 2.0.0")
        assert [o.outcome for o in report.outcomes] == ["migrated"]
        assert store.get("a-clean").protocol.version == "2.0.0"
        [record] = store.migrations("a-clean")
        assert store.verify().ok
        assert store.apply("a-clean", measure_for_seq(60)).ok  # the next event chains on the record
        assert store.verify().ok
    copied = tmp_path / "copy.db"
    result = CliRunner().invoke(cli, ["store", "copy", "--from", url, "--to", str(copied), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["rows"]["course_migrations"] == 1
    with Store.open(copied) as store:
        assert [m.hash for m in store.migrations("a-clean")] == [record.hash]
        assert store.get("a-clean").protocol.version == "2.0.0" and store.verify().ok
