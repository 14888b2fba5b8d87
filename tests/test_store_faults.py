"""Store faults on real SQLite files: a lock held past the timeout, a full disk, read-only files
and directories, random corruption, a newer schema, a foreign database, tampered events and bad
arguments. Each gives the store's typed error (the CLI: one line, exit 2) or a verify finding,
never a raw ``sqlite3`` error, a traceback or a wrong answer.

A tiny or read-only filesystem is a tmpfs mounted for the test (as root); where mounting is not
permitted, a full database comes from SQLite's own ``PRAGMA max_page_count`` on the store's
real connection, and a read-only directory from ``chmod`` (which binds only a non-root user).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlite_utils import Database
from store_support import db_content, measure_for_seq, opened

from iptflow.cli import cli
from iptflow.research.demo import demo_events
from iptflow.store import (
    DamagedStore,
    HashMismatch,
    ImportRefused,
    InvalidArgument,
    NewerSchema,
    NoDatabase,
    NotAnIptflowStore,
    OlderSchema,
    Store,
    StoreBusy,
    StoreError,
    StoreFull,
    StoreReadOnly,
)
from iptflow.store.migrations import KNOWN_MIGRATIONS, migrations

BIPOLAR = Path(__file__).parent / "courses" / "bipolar" / "complete.course.jsonl"  # ipsrt-complete

READ_COMMANDS = (
    ("verify",),
    ("report",),
    ("course", "list"),
    ("course", "list", "--adaptation", "bipolar"),
    ("course", "show", "d-1"),
    ("course", "log", "d-1"),
    ("course", "export", "d-1"),
    ("export", "fhir", "d-1"),
)


def run(*args: str, input: str | None = None, env: dict[str, str] | None = None):
    """The real CLI in-process; never a traceback (an exception other than SystemExit)."""
    result = CliRunner().invoke(cli, list(args), input=input, env=env)
    assert "Traceback" not in result.output
    if result.exception is not None:
        assert isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def one_line_error(result, *fragments: str) -> None:
    """Exit 2 and one ``iptflow: error:`` line on stderr naming every fragment."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("iptflow: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def make_store(path: Path, *courses: str) -> Path:
    with Store.open(path) as store:
        store.import_many([demo_events(c) for c in courses or ("d-1", "d-2")])
    return path


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


# -- mounts ----------------------------------------------------------------------------------------
def _mount(*args: str) -> bool:
    try:
        done = subprocess.run(["mount", *args], capture_output=True, check=False)
    except OSError:
        return False
    return done.returncode == 0


@pytest.fixture
def tiny_fs() -> Iterator[Path]:
    """A 300 KiB tmpfs (root only: room for a new store's migrations in its WAL and a course
    or two); skipped where mounting is not permitted."""
    mountpoint = Path(tempfile.mkdtemp(prefix="iptflow-tiny-"))
    if os.geteuid() != 0 or not _mount("-t", "tmpfs", "-o", "size=300k", "tmpfs", str(mountpoint)):
        mountpoint.rmdir()
        pytest.skip("mounting a tmpfs is not permitted here (test_database_full_at_page_limit "
                    "covers SQLITE_FULL without a mount)")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", str(mountpoint)], check=False)
        mountpoint.rmdir()


@pytest.fixture
def readonly_dir() -> Iterator[tuple[Path, Path]]:
    """(directory, store in it): an intact store in a directory nobody can write to: a tmpfs
    remounted read-only as root; ``chmod 555`` (and the store ``chmod 444``) for other users."""
    directory = Path(tempfile.mkdtemp(prefix="iptflow-ro-"))
    mounted = os.geteuid() == 0
    if mounted and not _mount("-t", "tmpfs", "-o", "size=4m", "tmpfs", str(directory)):
        directory.rmdir()
        pytest.skip("running as root, where chmod does not stop writes, and mounting a "
                    "read-only tmpfs is not permitted here")
    try:
        store = make_store(directory / "ro.db")
        assert not Path(f"{store}-wal").exists()  # a clean close checkpoints and removes the WAL
        if mounted:
            assert _mount("-o", "remount,ro", str(directory))
        else:
            store.chmod(0o444)
            directory.chmod(0o555)
        yield directory, store
    finally:
        if mounted:
            subprocess.run(["umount", str(directory)], check=False)
            directory.rmdir()
        else:
            directory.chmod(0o755)
            shutil.rmtree(directory)


# -- a lock held past the timeout -------------------------------------------------------------------
def test_a_lock_held_past_the_timeout_is_store_busy_with_the_time_waited(tmp_path: Path):
    db = make_store(tmp_path / "busy.db", "d-1")
    before = db_content(db)
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with Store.open(db, timeout=0.2) as store:
            with pytest.raises(StoreBusy) as info:
                store.open_course(opened("c-new"))
            assert info.value.code == "store_busy"
            assert info.value.details["timeout"] == 0.2 and info.value.details["waited"] >= 0
            assert "locked by another connection: waited" in info.value.message
            assert store.get("d-1").seq == len(demo_events("d-1"))  # reads still work (WAL)
        r = run("course", "open", json.dumps(opened("c-cli")), "--db", str(db),
                env={"IPTFLOW_DB_TIMEOUT": "0.2"})
        one_line_error(r, "locked by another connection", "timeout 0.2 s")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert db_content(db) == before
    r = run("course", "list", "--db", str(db), env={"IPTFLOW_DB_TIMEOUT": "soon"})
    one_line_error(r, "IPTFLOW_DB_TIMEOUT must be a number")


# -- a full disk -----------------------------------------------------------------------------------
def _fill(store: Store) -> tuple[list[str], StoreFull]:
    """Import demo courses until the store is full; the ids stored and the error."""
    stored: list[str] = []
    for n in range(500):
        try:
            stored += store.import_many([demo_events(f"f-{n:03d}")])
        except StoreFull as exc:
            return stored, exc
    raise AssertionError("the store never filled up")


def test_a_full_disk_is_store_full_and_stores_nothing_half_written(tiny_fs: Path):
    db = tiny_fs / "full.db"
    with Store.open(db) as store:
        stored, error = _fill(store)
        assert error.code == "disk_full" and "the disk is full" in error.message
        assert stored and store.count() == len(stored)  # the failed course left nothing behind
    r = run("course", "open", json.dumps(opened("one-more")), "--db", str(db))
    if r.exit_code != 0:  # the freed pages may still hold one small course
        one_line_error(r, "the disk is full")
    report = run("verify", "--db", str(db))
    assert report.exit_code == 0, report.output


def test_database_full_at_page_limit(tmp_path: Path):
    """SQLITE_FULL without a small filesystem: SQLite's own page limit on the store's real
    connection (``PRAGMA max_page_count``) makes every write past it fail as a full disk."""
    db = make_store(tmp_path / "limit.db", "d-1")
    with Store.open(db) as store:
        pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
        store.conn.execute(f"PRAGMA max_page_count = {pages}")
        before = db_content(db)
        with pytest.raises(StoreFull, match="the disk is full"):
            for n in range(50):
                store.import_many([demo_events(f"g-{n}")])
        assert db_content(db) == before
        assert store.verify().ok


# -- read-only files and directories ---------------------------------------------------------------
def test_read_commands_work_on_an_intact_store_in_a_read_only_directory(readonly_dir):
    directory, db = readonly_dir
    before = snapshot(directory)
    assert run("verify", "--db", str(db)).exit_code == 0
    r = run("course", "list", "--db", str(db), "--json")
    assert [json.loads(line)["id"] for line in r.output.splitlines()] == ["d-1", "d-2"]
    assert run("course", "show", "d-1", "--db", str(db), "--verify").exit_code == 0
    assert run("course", "log", "d-1", "--db", str(db), "--verify").exit_code == 0
    exported = run("course", "export", "d-1", "--db", str(db), "--verify")
    assert exported.exit_code == 0 and exported.output.count("\n") == len(demo_events("d-1"))
    assert run("report", "--db", str(db), "--json").exit_code == 0
    with Store.open(db, readonly=True) as store:
        assert store.count() == 2
    assert snapshot(directory) == before


def test_writes_to_a_read_only_directory_are_store_read_only(readonly_dir):
    directory, db = readonly_dir
    before = snapshot(directory)
    with pytest.raises(StoreReadOnly, match="cannot be written"):
        Store.open(db)
    with pytest.raises(StoreReadOnly):
        Store.open(directory / "new.db")
    one_line_error(run("course", "open", json.dumps(opened("c-x")), "--db", str(db)),
                   "cannot be written")
    one_line_error(run("course", "apply", "d-1", json.dumps(measure_for_seq(99)), "--db", str(db)),
                   "cannot be written")
    assert snapshot(directory) == before


def test_a_store_opened_read_only_refuses_every_write(tmp_path: Path):
    db = make_store(tmp_path / "ro-file.db", "d-1")
    before = db_content(db)
    with Store.open(db, readonly=True) as store:
        assert store.readonly
        with pytest.raises(StoreReadOnly, match="opened read-only"):
            store.open_course(opened("c-new"))
        with pytest.raises(StoreReadOnly):
            store.apply("d-1", measure_for_seq(99))
        with pytest.raises(StoreReadOnly):
            store.import_many([demo_events("d-9")])
        with pytest.raises(StoreReadOnly), store.recorder.mapped():  # below the API: mode=ro
            store.conn.execute("DELETE FROM course_adaptations")
    assert db_content(db) == before


def test_a_read_only_file_is_store_read_only():
    """A store file without write permission, as a user it does not belong to: as root (CI),
    the CLI runs as ``nobody`` through setpriv, since chmod does not stop root."""
    directory = Path(tempfile.mkdtemp(prefix="iptflow-chmod-"))
    try:
        directory.chmod(0o755)  # nobody may read it but create nothing in it
        db = make_store(directory / "chmod.db", "d-1")
        db.chmod(0o444)
        before = db_content(db)
        as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        iptflow = [*(as_nobody if os.geteuid() == 0 else []), str(Path(sys.executable).parent / "iptflow")]
        opened_ = subprocess.run([*iptflow, "course", "open", json.dumps(opened("c-x")), "--db", str(db)],
                                 capture_output=True, text=True, timeout=120)
        assert opened_.returncode == 2, opened_.stderr
        lines = opened_.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("iptflow: error: ") and "cannot be written" in lines[0]
        verified = subprocess.run([*iptflow, "verify", "--db", str(db)],
                                  capture_output=True, text=True, timeout=120)
        assert verified.returncode == 0, verified.stderr
        assert db_content(db) == before
    finally:
        shutil.rmtree(directory)


# -- random corruption -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store of three courses (one with an adaptation), vacuumed: every page is in use."""
    db = tmp_path_factory.mktemp("pristine") / "pristine.db"
    with Store.open(db) as store:
        store.import_many([demo_events("d-1"), demo_events("d-2")])
        store.import_course_file(BIPOLAR)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.execute("VACUUM")
    conn.close()
    return db


@pytest.mark.parametrize("trial", range(20))
def test_random_page_overwrites_are_found_by_verify_and_typed_elsewhere(
    pristine: Path, tmp_path: Path, trial: int
):
    rng = random.Random(1200 + trial)
    db = tmp_path / "damaged.db"
    data = bytearray(pristine.read_bytes())
    page_size = int.from_bytes(data[16:18], "big")
    page = rng.randrange(len(data) // page_size)
    data[page * page_size:(page + 1) * page_size] = rng.randbytes(page_size)
    db.write_bytes(bytes(data))

    report = run("verify", "--db", str(db))
    assert report.exit_code == 1, (page, report.output, report.stderr)
    assert "BROKEN" in report.output
    as_json = run("verify", "--db", str(db), "--json")
    assert as_json.exit_code == 1 and json.loads(as_json.output)["problems"]
    for command in READ_COMMANDS[1:]:
        r = run(*command, "--db", str(db))
        if r.exit_code != 0:  # damage elsewhere in the file may leave this read intact
            one_line_error(r)


# -- schema versions -------------------------------------------------------------------------------
def test_a_newer_schema_is_named_with_what_this_release_knows(tmp_path: Path):
    db = make_store(tmp_path / "newer.db", "d-1")
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO _sqlite_migrations (migration_set, name, applied_at) "
                 "VALUES ('iptflow', 'm999_from_the_future', '2030-01-01')")
    conn.commit()
    conn.close()
    before = db.read_bytes()
    for readonly in (False, True):
        with pytest.raises(NewerSchema) as info:
            Store.open(db, readonly=readonly)
        assert info.value.details["unknown"] == ["m999_from_the_future"]
        assert info.value.details["known"] == list(KNOWN_MIGRATIONS)
    for command in (("course", "open", json.dumps(opened("c-x"))), *READ_COMMANDS):
        one_line_error(run(*command, "--db", str(db)), "m999_from_the_future",
                       "m003_simulation_runs")
    assert db.read_bytes() == before


def test_an_older_schema_is_upgraded_by_a_write_and_named_by_a_read(tmp_path: Path):
    db = tmp_path / "older.db"
    conn = sqlite3.connect(db)
    migrations.apply(Database(conn), stop_before="m003_simulation_runs")
    conn.close()
    with pytest.raises(OlderSchema, match="m003_simulation_runs"):
        Store.open(db, readonly=True)
    one_line_error(run("verify", "--db", str(db)), "lacks migration(s) m003_simulation_runs")
    Store.open(db).close()  # a writing open applies it
    assert run("verify", "--db", str(db)).exit_code == 0


# -- a foreign database ----------------------------------------------------------------------------
def test_a_foreign_database_stays_byte_identical_after_every_read_command(tmp_path: Path):
    db = tmp_path / "clinic.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE patients (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO patients (name) VALUES ('A. Patient')")
    conn.commit()
    conn.close()
    before = snapshot(tmp_path)
    for command in (*READ_COMMANDS, ("course", "plot", "d-1", "--out", str(tmp_path / "p.svg"))):
        one_line_error(run(*command, "--db", str(db)), "is not an iptflow store", "patients")
    with pytest.raises(NotAnIptflowStore):
        Store.open(db, readonly=True)
    assert snapshot(tmp_path) == before


def test_read_commands_refuse_a_missing_file_and_create_nothing(tmp_path: Path):
    db = tmp_path / "absent.db"
    for command in READ_COMMANDS:
        one_line_error(run(*command, "--db", str(db)), "no database at")
    with pytest.raises(NoDatabase):
        Store.open(db, readonly=True)
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_is_not_sqlite_is_damaged_and_a_verify_finding(tmp_path: Path):
    db = tmp_path / "notes.db"
    db.write_text("not SQLite\n" * 500)
    with pytest.raises(DamagedStore, match="not a database"):
        Store.open(db, readonly=True)
    report = run("verify", "--db", str(db), "--json")
    assert report.exit_code == 1
    assert json.loads(report.output)["problems"][0]["kind"] == "damaged"
    one_line_error(run("course", "list", "--db", str(db)), "not a database")


# -- derived tables --------------------------------------------------------------------------------
def _bipolar_store(path: Path) -> Path:
    with Store.open(path) as store:
        store.import_course_file(BIPOLAR)
        store.import_many([demo_events("d-2")])
    return path


def test_verify_finds_a_deleted_course_adaptations_row_and_list_refuses_a_wrong_count(tmp_path: Path):
    db = _bipolar_store(tmp_path / "adapt.db")
    listed = run("course", "list", "--adaptation", "bipolar", "--db", str(db), "--json").output
    assert [json.loads(line)["id"] for line in listed.splitlines()] == ["ipsrt-complete"]
    conn = sqlite3.connect(db)
    conn.execute("DELETE FROM course_adaptations")
    conn.commit()
    conn.close()
    report = run("verify", "--db", str(db), "--json")
    assert report.exit_code == 1
    problems = json.loads(report.output)["problems"]
    assert [(p["kind"], p["course_id"]) for p in problems] == [
        ("course_adaptations", "ipsrt-complete")
    ]
    one_line_error(run("course", "list", "--adaptation", "bipolar", "--db", str(db)),
                   "1 course(s) have adaptation 'bipolar' but course_adaptations lists 0")


def test_a_dropped_table_is_a_verify_finding_and_a_typed_error(tmp_path: Path):
    db = _bipolar_store(tmp_path / "dropped.db")
    conn = sqlite3.connect(db)
    conn.execute("DROP TABLE course_adaptations")
    conn.commit()
    conn.close()
    report = run("verify", "--db", str(db), "--json")
    assert report.exit_code == 1
    assert json.loads(report.output)["problems"][0]["kind"] == "schema"
    one_line_error(run("course", "list", "--adaptation", "bipolar", "--db", str(db)),
                   "no such table: course_adaptations")
    assert run("course", "list", "--db", str(db)).exit_code == 0  # the other tables still read


# -- reads that check hashes -----------------------------------------------------------------------
def test_verify_on_reads_names_an_event_whose_hash_no_longer_matches(tmp_path: Path):
    db = make_store(tmp_path / "tampered.db", "d-1")
    conn = sqlite3.connect(db)
    conn.execute("DROP TRIGGER events_no_update")
    conn.execute("UPDATE events SET body = replace(body, '\"score\":', '\"score\": ') "
                 "WHERE course_id = 'd-1' AND seq = 2")
    conn.commit()
    conn.close()
    with Store.open(db, readonly=True) as store:
        assert len(store.history("d-1")) == len(demo_events("d-1"))  # unchecked: served as stored
        for read in (store.get, store.history, store.export_course_file):
            with pytest.raises(HashMismatch) as info:
                read("d-1", verify=True)
            assert info.value.details["seq"] == 2 and "course d-1 event 2" in info.value.message
    for command in ("show", "log", "export"):
        assert run("course", command, "d-1", "--db", str(db)).exit_code == 0
        one_line_error(run("course", command, "d-1", "--db", str(db), "--verify"),
                       "course d-1 event 2", "hash does not match")


# -- bad arguments to the library ------------------------------------------------------------------
def test_bad_arguments_are_typed_errors_naming_what_is_wrong(tmp_path: Path):
    db = make_store(tmp_path / "args.db", "d-1")
    before = db_content(db)
    with Store.open(db) as store:
        with pytest.raises(ImportRefused, match="source 0: an empty sequence") as info:
            store.import_many([[]])
        assert info.value.details["position"] == 0
        with pytest.raises(ImportRefused, match=r"source 1: .*got int") as info:
            store.import_many([demo_events("ok-1"), 42])
        assert info.value.details["position"] == 1
        with pytest.raises(InvalidArgument, match="expected_seq must be an int, got str"):
            store.apply("d-1", measure_for_seq(99), expected_seq="1")  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument, match="course_id must be a str, got int"):
            store.apply(7, measure_for_seq(99))  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument, match="idempotency_key must be a str"):
            store.open_course(opened("c-k"), idempotency_key=b"k")  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument, match="timeout"):
            Store.open(db, timeout="soon")  # type: ignore[arg-type]
    assert db_content(db) == before


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize("field,value,why", [
    ("note", _nested(1500), "more than 100 levels deep"),
    ("actor", "\ud800", "lone surrogate"),
])
def test_unstorable_bodies_are_rejected_invalid_event_and_write_nothing(
    tmp_path: Path, field: str, value: object, why: str
):
    db = make_store(tmp_path / "bodies.db", "d-1")
    before = db_content(db)
    with Store.open(db) as store:
        result = store.apply("d-1", {**measure_for_seq(99), field: value})
        assert (result.code, why in result.message) == ("invalid_event", True)
        result = store.open_course({**opened("c-deep"), field: value})
        assert (result.code, why in result.message) == ("invalid_event", True)
    assert db_content(db) == before


def test_unstorable_bodies_through_the_cli_exit_1_or_2_without_a_traceback(tmp_path: Path):
    db = make_store(tmp_path / "cli-bodies.db", "d-1")
    before = db_content(db)
    deep = '{"type": "measure_recorded", "at": "2025-01-06T10:00:00Z", "instrument": "phq9", ' \
        '"score": 3, "note": ' + "[" * 500 + "]" * 500 + "}"
    r = run("course", "apply", "d-1", "--db", str(db), input=deep)  # text nested too deeply
    one_line_error(r, "more than 100 levels deep")  # is unusable input, like invalid JSON
    surrogate = json.dumps({**measure_for_seq(99), "actor": "\ud800"})  # "\\ud800" in the JSON
    r = run("course", "apply", "d-1", surrogate, "--db", str(db))
    assert r.exit_code == 1 and "lone surrogate" in r.output
    course_file = tmp_path / "surrogate.jsonl"
    events = demo_events("s-1")
    events[1] = {**events[1], "actor": "\ud800"}
    course_file.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="ascii")
    r = run("course", "import", str(course_file), "--db", str(db))  # the event is rejected
    assert r.exit_code == 1 and "line 2: invalid_event" in r.stderr and "lone surrogate" in r.stderr
    assert db_content(db) == before


def test_every_store_error_has_a_stable_code():
    codes = {cls.code for cls in (StoreBusy, StoreFull, StoreReadOnly, DamagedStore, NewerSchema,
                                  OlderSchema, NotAnIptflowStore, InvalidArgument, HashMismatch)}
    assert codes == {"store_busy", "disk_full", "read_only", "damaged_store", "newer_schema",
                     "older_schema", "not_an_iptflow_store", "invalid_argument", "hash_mismatch"}
    assert all(issubclass(cls, StoreError) for cls in (StoreBusy, StoreFull, HashMismatch))
