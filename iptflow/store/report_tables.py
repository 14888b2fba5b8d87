"""The report tables (migration m007): per course, the facts ``iptflow report`` aggregates that
no other table holds, kept as a derived cache so that the report is SQL over tables instead
of a replay of every course (docs/store.md#report-tables).

* ``report_courses``: one row per course: the ``seq``, ``last_hash`` and ``fingerprint`` of
  its ``courses`` row the facts were computed at, and the outcome ``instrument`` (the
  baseline's, ``NULL`` without one);
* ``report_phase_days``: days spent in each phase the course entered;
* ``report_trajectories``: the latest score of the baseline instrument at the end of each
  phase, as percent of the baseline score, with the course's outcome ``status`` (that of its
  ``courses`` row, repeated here so that the report groups by it without a join: at 10^6
  courses the join alone took longer than every other aggregate together);
* ``report_deviations``: how many deviations of each code the course has.

Like snapshots they are never the truth: a course's rows are *current* only while its
``report_courses`` row matches its ``courses`` row (same ``last_seq``, ``last_hash`` and
``fingerprint``). Appending an event or migrating a course makes them stale;
:func:`stale_courses` lists those, and the research layer
(:mod:`iptflow.research.report_facts`) recomputes and rewrites them. ``store copy`` does not
copy them (the target's first report recomputes them all).

The per-course facts themselves are computed in :mod:`iptflow.research.report_facts`; this
module only writes and reads them, for SQLite and PostgreSQL alike (``?`` placeholders turned
into ``%s`` by :func:`~iptflow.store.sql.statement`). The aggregates are in
:mod:`iptflow.store.report_queries`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from iptflow.store.sql import statement

__all__ = [
    "M007_REPORT_TABLES",
    "REPORT_TABLES",
    "ReportRows",
    "event_bodies",
    "has_report_tables",
    "stale_courses",
    "write_report_rows",
]

#: The report tables, parent first.
REPORT_TABLES = ("report_courses", "report_phase_days", "report_trajectories", "report_deviations")

#: Migration m007 on PostgreSQL (the SQLite store's ``m007_report_tables``).
M007_REPORT_TABLES = (
    """CREATE TABLE report_courses (
        course_id text PRIMARY KEY,
        seq bigint NOT NULL,
        last_hash text NOT NULL,
        fingerprint text NOT NULL,
        instrument text
    )""",
    """CREATE TABLE report_phase_days (
        course_id text NOT NULL,
        phase text NOT NULL,
        days double precision NOT NULL,
        PRIMARY KEY (course_id, phase)
    )""",
    "CREATE INDEX report_phase_days_phase ON report_phase_days (phase, days)",
    """CREATE TABLE report_trajectories (
        course_id text NOT NULL,
        phase text NOT NULL,
        pct double precision NOT NULL,
        status text NOT NULL,
        PRIMARY KEY (course_id, phase)
    )""",
    "CREATE INDEX report_trajectories_status ON report_trajectories (status, phase, pct)",
    """CREATE TABLE report_deviations (
        course_id text NOT NULL,
        code text NOT NULL,
        n bigint NOT NULL,
        PRIMARY KEY (course_id, code)
    )""",
)


@dataclass(slots=True)
class ReportRows:
    """One course's report facts, computed after its event ``seq`` on the protocol
    ``fingerprint`` (:class:`iptflow.research.report_facts.FactsTracker` computes them);
    ``status`` is its outcome status (``none`` without an outcome)."""

    course_id: str
    seq: int
    fingerprint: str
    instrument: str | None
    status: str = "none"
    phase_days: dict[str, float] = field(default_factory=dict)
    trajectory: dict[str, float] = field(default_factory=dict)
    deviations: dict[str, int] = field(default_factory=dict)


def has_report_tables(recorder: Any) -> bool:
    """Whether the store has the report tables (a store opened read-only before m007 was
    applied has not: every course then reads as stale)."""
    return "report_courses" in recorder.tables()


_STALE = (
    "SELECT c.id AS course_id, c.fingerprint AS fingerprint FROM courses c "
    "LEFT JOIN report_courses r ON r.course_id = c.id "
    "WHERE r.course_id IS NULL OR r.seq <> c.last_seq OR r.last_hash <> c.last_hash "
    "OR r.fingerprint <> c.fingerprint ORDER BY c.id"
)


def stale_courses(recorder: Any) -> list[tuple[str, str]]:
    """``(course_id, fingerprint)`` of every course whose report rows are missing or stale, by
    id (every course when the store has no report tables)."""
    if not has_report_tables(recorder):
        return [(r["id"], r["fingerprint"])
                for r in recorder.rows("SELECT id, fingerprint FROM courses ORDER BY id")]
    return [(r["course_id"], r["fingerprint"]) for r in recorder.rows(_STALE)]


def event_bodies(recorder: Any, course_id: str) -> list[str]:
    """The course's stored event bodies (JSON text), in seq order."""
    rows = recorder.rows(statement(recorder, "SELECT body FROM events WHERE course_id = ? ORDER BY seq"),
                         (course_id,))
    return [r["body"] for r in rows]


# The report_courses row is taken from the courses row, and only written while that row is
# still at the seq and on the protocol the facts were computed at: events are append-only,
# so the facts of (the first seq events, that protocol) are those of the course. A course
# whose row moved on meanwhile keeps no report_courses row, i.e. reads as stale; the child
# rows written beside it are replaced when it is refreshed.
_INSERT_COURSE = (
    "INSERT INTO report_courses (course_id, seq, last_hash, fingerprint, instrument) "
    "SELECT id, last_seq, last_hash, fingerprint, ? FROM courses "
    "WHERE id = ? AND last_seq = ? AND fingerprint = ?"
)
_INSERT_CHILD = {
    "report_phase_days": "INSERT INTO report_phase_days (course_id, phase, days) VALUES (?, ?, ?)",
    "report_trajectories": (
        "INSERT INTO report_trajectories (course_id, phase, pct, status) VALUES (?, ?, ?, ?)"),
    "report_deviations": "INSERT INTO report_deviations (course_id, code, n) VALUES (?, ?, ?)",
}


def _executemany(recorder: Any, sql: str, values: Sequence[Sequence[Any]]) -> None:
    if not values:
        return
    sql = statement(recorder, sql)
    with recorder.mapped():
        if getattr(recorder, "backend", "sqlite") == "postgresql":
            with recorder.conn.cursor() as cur:
                cur.executemany(sql, values)
        else:
            recorder.conn.executemany(sql, values)


def child_values(rows: Sequence[ReportRows]) -> dict[str, list[tuple[Any, ...]]]:
    """The child tables' rows of ``rows``, by table (also the in-memory rows of a report on a
    read-only store: :mod:`iptflow.store.report_queries`)."""
    return {
        "report_phase_days": [(r.course_id, k, float(v)) for r in rows for k, v in r.phase_days.items()],
        "report_trajectories": [(r.course_id, k, float(v), r.status) for r in rows
                                for k, v in r.trajectory.items()],
        "report_deviations": [(r.course_id, k, int(v)) for r in rows for k, v in r.deviations.items()],
    }


@contextmanager
def _write(recorder: Any, within: bool) -> Iterator[None]:
    if within:
        yield
    else:
        with recorder.write():
            yield


def write_report_rows(recorder: Any, rows: Sequence[ReportRows], *, within: bool = False) -> None:
    """Replace the report rows of each course of ``rows`` (one write transaction, or the open
    one with ``within``); a course no longer at the facts' seq and protocol keeps no
    ``report_courses`` row (it stays stale)."""
    if not rows:
        return
    ids = [(r.course_id,) for r in rows]
    with _write(recorder, within):
        for table in reversed(REPORT_TABLES):
            _executemany(recorder, f"DELETE FROM {table} WHERE course_id = ?", ids)
        _executemany(recorder, _INSERT_COURSE,
                     [(r.instrument, r.course_id, r.seq, r.fingerprint) for r in rows])
        for table, values in child_values(rows).items():
            _executemany(recorder, _INSERT_CHILD[table], values)


def rows_as_json(rows: Sequence[ReportRows]) -> Mapping[str, str]:
    """``rows`` as JSON arrays of row arrays, by table (for :mod:`iptflow.store.report_queries`)."""
    out = {"report_courses": json.dumps([[r.course_id, r.instrument] for r in rows])}
    for table, values in child_values(rows).items():
        out[table] = json.dumps(values)
    out["stale"] = json.dumps([r.course_id for r in rows])
    return out
