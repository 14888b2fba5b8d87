"""Fixtures shared by the test files: ``store_url``, the store conformance fixture.

Every store test that takes ``store_url`` (directly, or through a file's ``db`` fixture) runs
twice: on a SQLite file and on a fresh schema of a real PostgreSQL server that the session
starts once (tests/pg_support.py). Outside CI, when the server binaries or psycopg are missing,
the PostgreSQL runs are skipped with a reason naming what is missing; with ``CI=true`` they
fail instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_support import PgServer, missing


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"PostgreSQL is required in CI: {reason} (.ci/run installs it)", pytrace=False)
    pytest.skip(f"no PostgreSQL server for the tests: missing {reason}")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One PostgreSQL server for the whole session (started on first use, stopped at the end)."""
    reason = missing()
    if reason is not None:
        _unavailable(reason)
    server = PgServer()
    try:
        server.start()
    except (OSError, RuntimeError) as exc:
        server.stop()
        _unavailable(f"a server that starts ({exc})")
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a test's store lives: a SQLite file, or an empty schema on the session's server."""
    if request.param == "sqlite":
        return str(tmp_path / "store.db")
    server: PgServer = request.getfixturevalue("pg_server")
    return server.fresh_url()
