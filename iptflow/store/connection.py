"""The store's SQLite boundary: connecting (for writing or read-only), checking the schema, and
turning every ``sqlite3`` error into one of the store's typed errors.

Read-only connections use SQLite's ``file:PATH?mode=ro`` URI and never write the file. A
store in WAL mode needs its ``-shm`` file to be read; in a directory that cannot be written
(a read-only mount, a directory without write permission) SQLite cannot create it, so when
``mode=ro`` cannot open the file and no ``-wal`` file exists the store is opened with
``immutable=1`` instead: without a ``-wal`` file there is no uncommitted or uncheckpointed
data, and no writer can start in a directory where it cannot create one. A ``-wal`` file that
cannot be read there is an error (:class:`StoreReadOnly`) rather than a read that would miss
its commits.
"""

from __future__ import annotations

import os
import sqlite3
from urllib.parse import quote

from iptflow.store.errors import (
    DamagedStore,
    NewerSchema,
    NoDatabase,
    NotAnIptflowStore,
    OlderSchema,
    StoreBusy,
    StoreError,
    StoreFull,
    StoreReadOnly,
)
from iptflow.store.migrations import KNOWN_MIGRATIONS, READ_OPTIONAL

__all__ = ["check_schema", "connect", "schema_pending", "store_error"]

# SQLite's primary result codes (the low byte of an extended code)
_PERM, _BUSY, _LOCKED, _READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = (
    3, 5, 6, 8, 10, 11, 13, 14, 26,
)


def _primary_code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


def _writable(path: str) -> bool:
    """Whether the file (if it exists) and its directory can be written (a read-only mount
    says no even to root)."""
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.exists(path) and not os.access(path, os.W_OK):
        return False
    return os.access(directory, os.W_OK)


def store_error(
    exc: sqlite3.Error, path: str, *, waited: float | None = None, timeout: float | None = None
) -> StoreError:
    """The typed error for a ``sqlite3`` error on the database at ``path``.

    ``waited`` is how long the failed statement ran (for a busy database), ``timeout`` the
    store's busy timeout.
    """
    code = _primary_code(exc)
    text = str(exc)
    if code in (_BUSY, _LOCKED) or "database is locked" in text:
        waited_s = round(waited or 0.0, 3)
        return StoreBusy(
            f"{path} is locked by another connection: waited {waited_s:g} s"
            + (f" (timeout {timeout:g} s)" if timeout is not None else "")
            + "; try again when the other writer has finished",
            path=path, waited=waited_s, timeout=timeout,
        )
    if code == _FULL:
        return StoreFull(
            f"{path}: the disk is full ({text}); nothing of this write was stored", path=path
        )
    if code in (_READONLY, _PERM) or (code in (_CANTOPEN, _IOERR) and not _writable(path)):
        return StoreReadOnly(
            f"{path} cannot be written (the file or its directory is read-only: {text}); "
            "nothing was stored", path=path,
        )
    if code in (_CORRUPT, _NOTADB):
        return DamagedStore(f"{path} is damaged or not a database: {text}", path=path)
    if text.startswith(("no such table", "no such column")):
        return DamagedStore(
            f"{path} is damaged: {text} (a table of the store was changed outside iptflow)",
            path=path,
        )
    if code == _CANTOPEN:
        return StoreError(f"cannot open database {path}: {text}", path=path)
    name = getattr(exc, "sqlite_errorname", None)
    return StoreError(f"{path}: SQLite error: {text}", path=path, sqlite=name)


def _check_path(name: str, *, must_exist: bool) -> None:
    if name == ":memory:":
        return
    if os.path.isdir(name):
        raise StoreError(f"{name} is a directory, not a database file", path=name)
    if must_exist and not os.path.exists(name):
        raise NoDatabase(f"no database at {name}", path=name)


def _probe(conn: sqlite3.Connection) -> None:
    conn.execute("SELECT count(*) FROM sqlite_master").fetchone()


def connect(name: str, *, readonly: bool, create: bool, timeout: float) -> sqlite3.Connection:
    """A connection to ``name`` whose schema has been read once (so a file that is not a
    database fails here). Read-only: ``mode=ro``, or ``immutable=1`` in a directory where the
    WAL index cannot be created (see the module's docstring)."""
    _check_path(name, must_exist=readonly or not create)
    if readonly and name == ":memory:":
        raise StoreError("a read-only store needs a database file, not :memory:", path=name)
    uri = f"file:{quote(os.path.abspath(name))}?mode=ro" if readonly else name
    try:
        conn = sqlite3.connect(uri, uri=readonly, timeout=timeout, isolation_level=None)
    except sqlite3.Error as exc:
        raise store_error(exc, name, timeout=timeout) from None
    try:
        _probe(conn)
    except sqlite3.OperationalError as exc:
        conn.close()
        no_wal = not os.path.exists(name + "-wal")
        if not (readonly and no_wal and _primary_code(exc) in (_CANTOPEN, _READONLY)):
            raise store_error(exc, name, timeout=timeout) from None
        conn = sqlite3.connect(uri + "&immutable=1", uri=True, timeout=timeout, isolation_level=None)
        try:
            _probe(conn)
        except sqlite3.Error as again:
            conn.close()
            raise store_error(again, name, timeout=timeout) from None
    except sqlite3.Error as exc:
        conn.close()
        raise store_error(exc, name, timeout=timeout) from None
    return conn


def _applied(conn: sqlite3.Connection) -> tuple[set[str], list[str]]:
    """The database's tables and the iptflow migrations recorded in it, in order."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "_sqlite_migrations" not in tables:
        return tables, []
    rows = conn.execute(
        "SELECT name FROM _sqlite_migrations WHERE migration_set = 'iptflow' ORDER BY rowid"
    )
    return tables, [r[0] for r in rows]


def check_schema(conn: sqlite3.Connection, path: str, *, readonly: bool) -> list[str]:
    """Check the schema on every open; return the known migrations not yet applied.

    Raises :class:`NewerSchema` when the file records a migration this release does not know.
    Read-only, it also raises :class:`NotAnIptflowStore` for a file with none of iptflow's
    tables and :class:`OlderSchema` when a migration is missing (opening for writing would
    apply it).
    """
    tables, applied = _applied(conn)
    return schema_pending(tables, applied, path, readonly=readonly)


def schema_pending(tables: set[str], applied: list[str], path: str, *, readonly: bool) -> list[str]:
    """The known migrations a store with these tables and applied migrations lacks (both
    backends); raises as :func:`check_schema` says."""
    unknown = [name for name in applied if name not in KNOWN_MIGRATIONS]
    if unknown:
        raise NewerSchema(
            f"{path} was written by a newer iptflow: it has migration(s) {', '.join(unknown)}; "
            f"this release knows {', '.join(KNOWN_MIGRATIONS)}: upgrade iptflow to use it",
            path=path, unknown=unknown, known=list(KNOWN_MIGRATIONS),
        )
    pending = [name for name in KNOWN_MIGRATIONS if name not in applied]
    if readonly and not applied:
        held = ", ".join(sorted(tables)[:5]) if tables else ""
        raise NotAnIptflowStore(
            f"{path} is not an iptflow store: "
            + (f"it holds other tables ({held}{', ...' if len(tables) > 5 else ''})"
               if tables else "it is an empty database"),
            path=path,
        )
    if readonly and any(name not in READ_OPTIONAL for name in pending):
        raise OlderSchema(
            f"{path} was written by an older iptflow and lacks migration(s) {', '.join(pending)}; "
            "open it once with a command that writes (e.g. iptflow course import) to upgrade it",
            path=path, missing=pending,
        )
    return pending
