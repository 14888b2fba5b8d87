"""The aggregates of ``iptflow report``, computed in SQL over ``courses`` and the report tables
(:mod:`iptflow.store.report_tables`), for SQLite and PostgreSQL alike.

Every aggregate is a ``GROUP BY``. A median is the one or two middle values of its group in
order, read with ``ORDER BY ... LIMIT 1 or 2 OFFSET (n - 1) / 2`` per group (their mean is
the median as :func:`statistics.median` takes it). The days in each phase are read in order
from the index ``report_phase_days (phase, days)``: at 10^4 courses this took 5 ms where
``ROW_NUMBER()``/``COUNT(*) OVER (PARTITION BY phase ORDER BY days)`` took 140-230 ms (a sort
of every row), bench/RESULTS.md. Nothing loops over courses in Python: what comes back is one
row per group.

:func:`report_aggregates` reads the report tables' rows of the courses whose rows are current
and, for the courses listed as ``extra`` (those that were stale when the report was built on
a store it could not write, or that changed meanwhile), the rows computed for them in memory,
passed as one JSON parameter per table; their stored rows are left out. Run it inside one
read transaction, with ``extra`` computed in the same one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from iptflow.store.report_tables import ReportRows, has_report_tables, rows_as_json
from iptflow.store.sql import statement

__all__ = ["Median", "report_aggregates"]

_COLUMNS = {
    "report_courses": (("course_id", "text"), ("instrument", "text")),
    "report_phase_days": (("course_id", "text"), ("phase", "text"), ("days", "double precision")),
    "report_trajectories": (("course_id", "text"), ("phase", "text"), ("pct", "double precision"),
                            ("status", "text")),
    "report_deviations": (("course_id", "text"), ("code", "text"), ("n", "bigint")),
}

#: One group's count, mean and middle values (``lo == hi`` for an odd count).
Median = tuple[int, float, Any, Any]


def _json_rows(backend: str, table: str) -> str:
    """A SELECT of the rows of ``table`` given as one JSON parameter (an array of arrays)."""
    cols = _COLUMNS[table]
    if backend == "postgresql":
        picks = ", ".join(f"(x->>{i})::{kind} AS {name}" for i, (name, kind) in enumerate(cols))
        return f"SELECT {picks} FROM jsonb_array_elements(CAST(? AS jsonb)) AS x"
    picks = ", ".join(f"json_extract(value, '$[{i}]') AS {name}" for i, (name, _) in enumerate(cols))
    return f"SELECT {picks} FROM json_each(?)"


def _stale_ids(backend: str) -> str:
    if backend == "postgresql":
        return "SELECT jsonb_array_elements_text(CAST(? AS jsonb))"
    return "SELECT value FROM json_each(?)"


class _Sources:
    """The FROM clause of each report table and its parameters: the table itself, or its
    current rows plus the ``extra`` ones given as JSON."""

    def __init__(self, recorder: Any, extra: Sequence[ReportRows]) -> None:
        self.recorder = recorder
        self.backend = getattr(recorder, "backend", "sqlite")
        self.tables = has_report_tables(recorder)
        self.extra = rows_as_json(extra) if extra else None

    def source(self, table: str) -> tuple[str, list[Any]]:
        names = ", ".join(name for name, _ in _COLUMNS[table])
        if self.extra is None and self.tables:
            return table, []
        given = (_json_rows(self.backend, table), [self.extra[table] if self.extra else "[]"])
        if not self.tables:
            return f"({given[0]})", given[1]
        stored = (f"SELECT {names} FROM {table} WHERE course_id NOT IN ({_stale_ids(self.backend)})",
                  [self.extra["stale"] if self.extra else "[]"])
        return f"({stored[0]} UNION ALL {given[0]})", [*stored[1], *given[1]]

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return self.recorder.rows(statement(self.recorder, sql), params)  # type: ignore[no-any-return]


def _medians(src: _Sources, from_: str, params: list[Any], key: str | None,
             value: str) -> dict[Any, Median]:
    """Per ``key`` (``None``: over all rows, under the key ``None``): count, mean, and the
    middle value(s) of ``value`` over ``from_``: one ``GROUP BY``, then per group (not per
    course) the one or two middle values in order (``LIMIT``/``OFFSET``; read from an index
    where there is one, as for phase days)."""
    groups = src.rows(
        f"SELECT {key or 'NULL'} AS k, COUNT(*) AS n, "
        f"AVG(CAST({value} AS DOUBLE PRECISION)) AS mean FROM {from_} AS s"
        + (f" GROUP BY {key}" if key else ""), params)
    out: dict[Any, Median] = {}
    for g in groups:
        n = int(g["n"])
        if not n:
            continue
        where, group = (f" WHERE {key} = ?", [g["k"]]) if key else ("", [])
        mid = src.rows(
            f"SELECT MIN(v) AS lo, MAX(v) AS hi FROM (SELECT {value} AS v FROM {from_} AS s{where} "
            f"ORDER BY {value} LIMIT ? OFFSET ?) AS m", [*params, *group, 2 - n % 2, (n - 1) // 2])[0]
        out[g["k"]] = (n, float(g["mean"]), mid["lo"], mid["hi"])
    return out


def _group(protocol_id: str, adaptations: str) -> str:
    return "+".join([protocol_id, *json.loads(adaptations)])


def _by_group(rows: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """``{group: {key: count}}`` from rows of (protocol_id, adaptations, key, n)."""
    out: dict[str, dict[str, int]] = {}
    for r in rows:  # one row per (protocol, adaptations, key): not per course
        counts = out.setdefault(_group(r["protocol_id"], r["adaptations"]), {})
        counts[r["k"]] = counts.get(r["k"], 0) + int(r["n"])
    return out


def report_aggregates(recorder: Any, extra: Sequence[ReportRows] = ()) -> dict[str, Any]:
    """Every aggregate of the report, unrounded and unordered (``iptflow.research.report``
    shapes them): ``courses``, ``synthetic``, ``states``, ``sessions`` (a :data:`Median` or
    ``None``), ``sessions_distribution``, ``phase_days`` (phase -> :data:`Median`),
    ``deviations`` (code -> count), ``outcomes`` and ``outcome_instruments`` (group -> key ->
    count), ``trajectories`` (status -> phase -> mean percent)."""
    src = _Sources(recorder, extra)
    totals = src.rows("SELECT COUNT(*) AS n, COALESCE(SUM(synthetic), 0) AS synthetic FROM courses")[0]
    states = {r["state"]: int(r["n"]) for r in src.rows(
        "SELECT state, COUNT(*) AS n FROM courses GROUP BY state")}
    distribution = {int(r["s"]): int(r["n"]) for r in src.rows(
        "SELECT sessions_held AS s, COUNT(*) AS n FROM courses GROUP BY sessions_held")}
    sessions = _medians(src, "courses", [], None, "sessions_held").get(None)
    days_from, days_params = src.source("report_phase_days")
    phase_days = _medians(src, days_from, days_params, "phase", "days")
    dev_from, dev_params = src.source("report_deviations")
    deviations = {r["code"]: int(r["n"]) for r in src.rows(
        f"SELECT code, SUM(n) AS n FROM {dev_from} AS d GROUP BY code", dev_params)}
    outcomes = _by_group(src.rows(
        "SELECT protocol_id, adaptations, COALESCE(outcome_status, 'none') AS k, COUNT(*) AS n "
        "FROM courses GROUP BY protocol_id, adaptations, COALESCE(outcome_status, 'none')"))
    rc_from, rc_params = src.source("report_courses")
    instruments = _by_group(src.rows(
        "SELECT c.protocol_id, c.adaptations, COALESCE(r.instrument, 'none') AS k, COUNT(*) AS n "
        f"FROM courses AS c JOIN {rc_from} AS r ON r.course_id = c.id "
        "GROUP BY c.protocol_id, c.adaptations, COALESCE(r.instrument, 'none')", rc_params))
    tr_from, tr_params = src.source("report_trajectories")
    trajectories: dict[str, dict[str, float]] = {}
    for r in src.rows(
            f"SELECT status, phase, AVG(pct) AS pct FROM {tr_from} AS t GROUP BY status, phase",
            tr_params):
        trajectories.setdefault(r["status"], {})[r["phase"]] = float(r["pct"])
    return {
        "courses": int(totals["n"]),
        "synthetic": int(totals["synthetic"]),
        "states": states,
        "sessions": sessions,
        "sessions_distribution": distribution,
        "phase_days": phase_days,
        "deviations": deviations,
        "outcomes": outcomes,
        "outcome_instruments": instruments,
        "trajectories": trajectories,
    }

