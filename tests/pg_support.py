"""A real PostgreSQL server for the tests: started once per session from the PostgreSQL 15
binaries, a fresh schema per test, stopped at the end.

``initdb`` refuses to run as root, and CI runs as root: then the server runs as the
``postgres`` system user (``setpriv``), in a temporary directory it owns, on a free loopback
port with its unix socket in that directory and ``trust`` authentication for local
connections. The server is small (``shared_buffers=16MB``, ``max_connections=30``) and keeps
``fsync=on``: the durability tests rely on it.

Outside CI a missing binary or a missing psycopg skips the PostgreSQL half of the suite with a
reason naming what is missing; with ``CI=true`` it fails instead.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any


def _pg_bin() -> Path:
    """``$IPTFLOW_PG_BIN``, else PostgreSQL 15's binaries, else the newest installed."""
    if os.environ.get("IPTFLOW_PG_BIN"):
        return Path(os.environ["IPTFLOW_PG_BIN"])
    preferred = Path("/usr/lib/postgresql/15/bin")
    if (preferred / "initdb").exists():
        return preferred
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    return found[-1].parent if found else preferred


PG_BIN = _pg_bin()
DATABASE = "iptflow_test"
TABLES = ("protocols", "courses", "events", "course_adaptations", "simulation_runs")


def missing() -> str | None:
    """What is missing to run a PostgreSQL server here, or None."""
    for tool in ("initdb", "pg_ctl", "postgres"):
        if not (PG_BIN / tool).exists():
            return f"the PostgreSQL server binaries ({PG_BIN / tool} does not exist)"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg 3 (pip install 'iptflow[postgres]')"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "an unprivileged 'postgres' user to run the server as (running as root)"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PgServer:
    """One PostgreSQL server in a temporary directory (see the module's docstring)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="iptflow-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        self._schemas = itertools.count(1)
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            user = pwd.getpwnam("postgres")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
        os.chmod(self.dir, 0o755)

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        prefix = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"]
        cmd = [*(prefix if self._as_postgres else []), *args]
        result = subprocess.run(cmd, capture_output=True, text=True, cwd=self.dir, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed ({result.returncode}): "
                               f"{result.stdout[-2000:]}{result.stderr[-2000:]}")
        return result

    def start(self) -> PgServer:
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres",
                  "-A", "trust", "-E", "UTF8", "--locale=C", "--no-instructions")
        options = (f"-c port={self.port} -c listen_addresses=127.0.0.1 "
                   f"-c unix_socket_directories={self.dir} -c shared_buffers=16MB "
                   "-c max_connections=30 -c fsync=on -c synchronous_commit=on "
                   "-c max_wal_size=256MB -c log_min_messages=warning")
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "log"),
                  "-o", options, "-w", "-t", "60", "start")
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")
        return self

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, database: str = DATABASE, schema: str | None = None) -> str:
        base = f"postgresql://postgres@127.0.0.1:{self.port}/{database}"
        return base + (f"?options=-csearch_path%3D{schema}" if schema else "")

    @property
    def admin_url(self) -> str:
        return self.url("postgres")

    def fresh_url(self) -> str:
        """The URL of a new, empty schema of the test database (one per test)."""
        import psycopg

        schema = f"t{os.getpid()}_{next(self._schemas)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        return self.url(schema=schema)


# -- reading and tampering with a store behind its back, on either backend ----------------------
def _integrity_errors() -> tuple[type[Exception], ...]:
    import sqlite3

    try:
        import psycopg
    except ImportError:
        return (sqlite3.IntegrityError,)
    return (sqlite3.IntegrityError, psycopg.errors.IntegrityConstraintViolation)


#: What a raw connection raises when the database refuses a change (triggers, constraints).
INTEGRITY_ERRORS = _integrity_errors()


def is_pg(location: Any) -> bool:
    return str(location).startswith("postgresql://")


def execute(location: Any, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run one statement on the store's database behind the store's back (``?`` placeholders
    on both backends) and commit; return its rows."""
    if is_pg(location):
        import psycopg

        with psycopg.connect(str(location), autocommit=True) as conn:
            cur = conn.execute(sql.replace("?", "%s"), params)
            return list(cur.fetchall()) if cur.description else []
    import sqlite3

    conn = sqlite3.connect(str(location))
    try:
        rows = conn.execute(sql, params).fetchall()
        conn.commit()
        return rows
    finally:
        conn.close()


def drop_trigger(location: Any, name: str, table: str = "events") -> None:
    """Drop an append-only trigger (to tamper with the log as an attacker with DDL rights)."""
    suffix = f" ON {table}" if is_pg(location) else ""
    execute(location, f"DROP TRIGGER IF EXISTS {name}{suffix}")


def content(location: Any, tables: tuple[str, ...] = TABLES) -> dict[str, tuple[int, str]]:
    """Row count and a SHA-256 of every row, per table, through a separate connection."""
    out = {}
    for table in tables:
        rows = execute(location, f"SELECT * FROM {table} ORDER BY 1, 2")
        digest = hashlib.sha256(repr([tuple(r) for r in rows]).encode()).hexdigest()
        out[table] = (len(rows), digest)
    return out
