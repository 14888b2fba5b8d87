"""Fidelity and outcome report over a store: the same on simulated and on real courses.

:func:`build_report` reads every course through the store API, replays it with the protocol it
was opened under (to know the state after each event) and returns a JSON-ready dict:

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

import statistics
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import Any

from iptflow.engine.course import Course
from iptflow.engine.events import parse_timestamp
from iptflow.engine.machine import CompiledProtocol
from iptflow.store.api import Store

PHASE_ORDER = ("assessment", "pre_group", "initial", "middle", "preventive", "termination",
               "maintenance")


def _phase(compiled: CompiledProtocol, state: str) -> str:
    phase = compiled.protocol.state_def(state).phase
    return phase or state


def _round(x: float) -> float:
    return round(x, 2)


def _course_facts(course_events: list[dict[str, Any]], compiled: CompiledProtocol) -> dict[str, Any]:
    """Replay one course, noting the phase after every event."""
    course, _ = Course.try_open(course_events[0], compiled.registry, notify=False, compiled=compiled)
    assert course is not None
    opened_at = parse_timestamp(course_events[0]["at"])
    phases: list[tuple[str, datetime]] = [(_phase(compiled, course.state), opened_at)]
    end_of_phase: dict[str, float] = {}
    baseline = None
    for raw in course_events[1:]:
        course.apply(raw)
        at = parse_timestamp(raw["at"])
        phase = _phase(compiled, course.state)
        # the outcome instrument's baseline (protocol 2.0.0 may choose again in assessment)
        baseline = course.facts.baseline
        if course.state not in compiled.final_states and phase != phases[-1][0]:
            phases.append((phase, at))
        elif course.state in compiled.final_states and phases[-1][0] != "end":
            phases.append(("end", at))
        if baseline is not None and baseline.score:
            latest = next((m for m in reversed(course.facts.measures)
                           if m.instrument == baseline.instrument), None)
            if latest is not None and course.state not in compiled.final_states:
                end_of_phase[phase] = 100.0 * latest.score / baseline.score
    last_at = parse_timestamp(course_events[-1]["at"])
    days: dict[str, float] = defaultdict(float)
    for (phase, start), nxt in zip(phases, [*phases[1:], ("", last_at)], strict=True):
        if phase != "end":
            days[phase] += (nxt[1] - start).total_seconds() / 86400
    outcome = course.outcome
    return {
        "state": course.state,
        "sessions": course.sessions_held,
        "days": dict(days),
        "deviations": [d.code for d in course.deviations],
        "status": outcome.status if outcome else "none",
        "instrument": course.facts.baseline.instrument if course.facts.baseline else None,
        "trajectory": end_of_phase,
    }


def build_report(store: Store, progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """The report of every course in a store (``iptflow.store.Store``); ``progress(1)`` is
    called after each course (for a progress bar over ``len(store.list())`` courses)."""
    rows = store.list()
    compiled_by_fp: dict[str, CompiledProtocol] = {}
    states: Counter[str] = Counter()
    sessions: list[int] = []
    phase_days: dict[str, list[float]] = defaultdict(list)
    deviations: Counter[str] = Counter()
    outcomes: dict[str, Counter[str]] = defaultdict(Counter)
    instruments: dict[str, Counter[str]] = defaultdict(Counter)
    trajectories: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    synthetic = sum(1 for r in rows if r.synthetic)
    for row in rows:
        compiled = compiled_by_fp.get(row.fingerprint)
        if compiled is None:
            compiled = store.get(row.id).compiled
            compiled_by_fp[row.fingerprint] = compiled
        events = [e.event for e in store.history(row.id)]
        facts = _course_facts(events, compiled)
        states[facts["state"]] += 1
        sessions.append(facts["sessions"])
        for phase, d in facts["days"].items():
            phase_days[phase].append(d)
        deviations.update(facts["deviations"])
        group = "+".join([row.protocol_id, *row.adaptations])
        outcomes[group][facts["status"]] += 1
        instruments[group][facts["instrument"] or "none"] += 1
        for phase, pct in facts["trajectory"].items():
            trajectories[facts["status"]][phase].append(pct)
        if progress is not None:
            progress(1)
    n = len(rows)
    return {
        "data": {
            "label": "synthetic" if synthetic == n and n else "real" if synthetic == 0 else "mixed",
            "synthetic_courses": synthetic,
            "real_courses": n - synthetic,
            "simulation_runs": _runs(store),
        },
        "courses": n,
        "states": dict(sorted(states.items())),
        "sessions": {
            "mean": _round(statistics.fmean(sessions)) if sessions else None,
            "median": statistics.median(sessions) if sessions else None,
            "distribution": {str(k): v for k, v in sorted(Counter(sessions).items())},
        },
        "phase_days": {
            phase: {"courses": len(v), "mean": _round(statistics.fmean(v)),
                    "median": _round(statistics.median(v))}
            for phase, v in _ordered(phase_days)
        },
        "deviations_per_100": {code: _round(100 * k / n) for code, k in sorted(deviations.items())},
        "outcomes": {group: dict(sorted(c.items())) for group, c in sorted(outcomes.items())},
        # the instrument each course's outcome is measured on (its baseline's)
        "outcome_instruments": {
            group: dict(sorted(c.items())) for group, c in sorted(instruments.items())
        },
        "trajectories": {
            status: {phase: _round(statistics.fmean(v)) for phase, v in _ordered(by_phase)}
            for status, by_phase in sorted(trajectories.items())
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
