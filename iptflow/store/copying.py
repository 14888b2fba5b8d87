"""Copying a whole store to another (``iptflow store copy``): SQLite to PostgreSQL is the path
a growing clinic takes, and any other direction works the same way.

Every row is copied as it is stored, so each course keeps its hash chain (the same hashes, seqs,
bodies, idempotency keys and ``recorded_at``), its pinned resolved protocols, its
``course_adaptations`` rows and its ``protocol_migrated`` records; simulation runs keep their
numbers. The copy is written in one transaction of the target (all or nothing; into
PostgreSQL through ``COPY``), and then the target is verified (:meth:`Store.verify
<iptflow.store.reading.StoreReader.verify>`) and its chain heads compared with the source's.

The target must hold no course and no simulation run: a copy never merges two stores. The
source is read in one snapshot, so a copy of a store in use is the store as it was at one
moment. This module writes rows verbatim, so the few INSERT statements it needs live here
rather than in the recorders (which write only what the Store decided).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from iptflow.store.errors import StoreError
from iptflow.store.postgres import PgRecorder
from iptflow.store.reading import StoreReader
from iptflow.store.recorder import Recorder
from iptflow.store.rows import Problem

__all__ = ["CopyReport", "copy_store"]

#: The tables a copy carries, in the order they are written (foreign keys first).
COPIED = ("protocols", "courses", "course_adaptations", "events", "course_migrations",
          "simulation_runs")


@dataclass(slots=True)
class CopyReport:
    """What ``copy_store`` copied (rows per table) and what verifying the copy found."""

    source: str
    target: str
    rows: dict[str, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def courses(self) -> int:
        return self.rows.get("courses", 0)

    @property
    def events(self) -> int:
        return self.rows.get("events", 0)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "source": self.source, "target": self.target, "rows": self.rows,
                "problems": [p.to_dict() for p in self.problems]}


def _read(recorder: Recorder | PgRecorder, table: str, order: str) -> list[dict[str, Any]]:
    return recorder.rows(f"SELECT * FROM {table} ORDER BY {order}")


_ORDER = {"protocols": "fingerprint", "courses": "id", "course_adaptations": "course_id, adaptation",
          "events": "course_id, seq", "course_migrations": "course_id, n",
          "simulation_runs": "run"}


def _write(recorder: Recorder | PgRecorder, table: str, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows verbatim (columns as the source has them) inside the open transaction."""
    if not rows:
        return
    columns = list(rows[0])
    names = ", ".join(columns)
    values = [tuple(r[c] for c in columns) for r in rows]
    if isinstance(recorder, PgRecorder):
        with recorder.mapped(), recorder.conn.cursor() as cur:
            if table == "protocols":
                marks = ", ".join(["%s"] * len(columns))
                cur.executemany(f"INSERT INTO protocols ({names}) VALUES ({marks}) "
                                "ON CONFLICT (fingerprint) DO NOTHING", values)
                return
            with cur.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in values:
                    copy.write_row(row)
        return
    verb = "INSERT OR IGNORE" if table == "protocols" else "INSERT"
    with recorder.mapped():
        recorder.conn.executemany(
            f"{verb} INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))})", values
        )


def copy_store(
    source: StoreReader, target: StoreReader, *, progress: Callable[[str, int], None] | None = None
) -> CopyReport:
    """Copy every row of ``source`` into the empty store ``target`` (one transaction), then
    verify ``target``. Raises :class:`StoreError` when the target holds courses or simulation
    runs, or (schema) when the source has a table the target cannot take."""
    report = CopyReport(source=source.path, target=target.path)
    src, dst = source.recorder, target.recorder
    source_tables, target_tables = src.tables(), dst.tables()
    tables = [t for t in COPIED if t in source_tables]
    refused = [t for t in tables if t not in target_tables]
    if refused:
        raise StoreError(f"{target.path} has no table {', '.join(refused)}: open it once with "
                         "this release to upgrade its schema", path=target.path)
    heads: dict[str, str] = {}
    with dst.write():
        if dst.count() or dst.simulation_runs():
            raise StoreError(
                f"{target.path} is not empty: a copy goes into a store with no course and no "
                "simulation run (it never merges two stores)", path=target.path,
            )
        with src.read():
            for table in tables:
                rows = _read(src, table, _ORDER[table])
                if table == "courses":
                    heads = {r["id"]: r["last_hash"] for r in rows}
                _write(dst, table, rows)
                report.rows[table] = len(rows)
                if progress is not None:
                    progress(table, len(rows))
    verified = target.verify()
    report.problems.extend(verified.problems)
    copied = {r.id: r.last_hash for r in target.list()}
    for course_id, head in heads.items():
        if copied.get(course_id) != head:
            report.problems.append(Problem(
                "copy", "its chain head in the copy differs from the source's", course_id))
    return report

