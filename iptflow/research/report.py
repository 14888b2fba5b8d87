"""Fidelity and outcome report over a store: the same on simulated and on real courses.

:func:`build_report` computes every aggregate in SQL (:mod:`iptflow.store.report_queries`) over
the ``courses`` table and the report tables (:mod:`iptflow.store.report_tables`), which hold
per course what no other table derives (days in each phase, deviation codes, the outcome
instrument, the trajectory). Those rows are a cache: on a store it may write, the report first
recomputes the rows of every course whose rows are missing or stale
(:func:`iptflow.research.report_facts.refresh_report_rows`, a write); on a store opened
read-only they are recomputed in memory for this report only. It returns a JSON-ready dict:

* ``data``: how many courses are synthetic and how many real, the label (``synthetic``,
  ``real`` or ``mixed``) and the recorded simulation runs;
* ``states``: courses by current state (final states and those still active);
* ``sessions``: sessions held per course: mean, median and distribution;
* ``phase_days``: time in each phase, in days between the event that entered it and the event
  that left it (or the course's last event), over the courses that entered it;
* ``deviations_per_100``: deviations per 100 courses, by code;
* ``outcomes``: outcome status by protocol and adaptations (``none`` when there is no outcome);
* ``trajectories``: the mean latest score of the baseline instrument at the end of each phase,
  as percent of baseline, by outcome status (the HTML report draws them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from iptflow.research.report_facts import refresh_report_rows, stale_report_facts
from iptflow.store.api import Store
from iptflow.store.report_queries import Median, report_aggregates
from iptflow.store.report_tables import stale_courses

PHASE_ORDER = ("assessment", "pre_group", "initial", "middle", "preventive", "termination",
               "maintenance")


def _round(x: float) -> float:
    return round(x, 2)


def _median(m: Median) -> Any:
    """As :func:`statistics.median`: the middle value, or the mean of the two middle ones."""
    n, _, lo, hi = m
    return lo if n % 2 else (lo + hi) / 2


def stale_count(store: Store) -> int:
    """How many courses' report rows :func:`build_report` would recompute."""
    with store.recorder.read():
        return len(stale_courses(store.recorder))


def build_report(store: Store, progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """The report of every course in a store (``iptflow.store.Store``).

    On a store opened for writing, the report rows of courses whose rows are missing or stale
    are recomputed and stored first (``progress(k)`` after each batch of ``k``; the total is
    :func:`stale_count`); the aggregates are then read in one read transaction. Courses stale
    at that moment (a store opened read-only, or courses that changed meanwhile) are replayed
    in memory for this report.
    """
    if not store.readonly:
        refresh_report_rows(store, progress)
    with store.recorder.read():
        stale = stale_courses(store.recorder)
        extra = stale_report_facts(store, stale)
        agg = report_aggregates(store.recorder, extra)
        runs = _runs(store)
    if store.readonly and progress is not None and stale:
        progress(len(stale))
    n, synthetic = agg["courses"], agg["synthetic"]
    sessions: Median | None = agg["sessions"]
    return {
        "data": {
            "label": "synthetic" if synthetic == n and n else "real" if synthetic == 0 else "mixed",
            "synthetic_courses": synthetic,
            "real_courses": n - synthetic,
            "simulation_runs": runs,
        },
        "courses": n,
        "states": dict(sorted(agg["states"].items())),
        "sessions": {
            "mean": _round(sessions[1]) if sessions else None,
            "median": _median(sessions) if sessions else None,
            "distribution": {str(k): v for k, v in sorted(agg["sessions_distribution"].items())},
        },
        "phase_days": {
            phase: {"courses": m[0], "mean": _round(m[1]), "median": _round(_median(m))}
            for phase, m in _ordered(agg["phase_days"])
        },
        "deviations_per_100": {code: _round(100 * k / n)
                               for code, k in sorted(agg["deviations"].items())},
        "outcomes": {group: dict(sorted(c.items())) for group, c in sorted(agg["outcomes"].items())},
        # the instrument each course's outcome is measured on (its baseline's)
        "outcome_instruments": {
            group: dict(sorted(c.items())) for group, c in sorted(agg["outcome_instruments"].items())
        },
        "trajectories": {
            status: {phase: _round(pct) for phase, pct in _ordered(by_phase)}
            for status, by_phase in sorted(agg["trajectories"].items())
        },
    }


def _ordered(d: dict[str, Any]) -> list[tuple[str, Any]]:
    def key(item: tuple[str, Any]) -> tuple[int, str]:
        name = item[0]
        return (PHASE_ORDER.index(name) if name in PHASE_ORDER else len(PHASE_ORDER), name)

    return sorted(d.items(), key=key)


def _runs(store: Store) -> list[dict[str, Any]]:
    return [
        {"run": r.run, "protocol": r.protocol, "adaptations": r.adaptations, "n": r.n, "seed": r.seed}
        for r in store.simulation_runs()
    ]


def render_text(report: dict[str, Any]) -> str:
    """The report for a terminal."""
    data = report["data"]
    lines = []
    if data["label"] != "real":
        lines.append(f"*** {data['label'].upper()} DATA: {data['synthetic_courses']} simulated course(s) "
                     f"of {report['courses']} ***")
    lines.append(f"courses: {report['courses']}")
    lines.append("by state: " + ", ".join(f"{k} {v}" for k, v in report["states"].items()))
    s = report["sessions"]
    lines.append(f"sessions held: mean {s['mean']}, median {s['median']}")
    lines.append("  distribution: " + ", ".join(f"{k}: {v}" for k, v in s["distribution"].items()))
    lines.append("days in phase (mean / median over courses that entered it):")
    for phase, d in report["phase_days"].items():
        lines.append(f"  {phase:<12} {d['mean']:>7} / {d['median']:<7} ({d['courses']} courses)")
    lines.append("deviations per 100 courses: " + (", ".join(
        f"{k} {v}" for k, v in report["deviations_per_100"].items()) or "none"))
    lines.append("outcome status by protocol and adaptations:")
    for group, counts in report["outcomes"].items():
        lines.append(f"  {group}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    lines.append("outcome instrument by protocol and adaptations:")
    for group, counts in report.get("outcome_instruments", {}).items():
        lines.append(f"  {group}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return "\n".join(lines)
