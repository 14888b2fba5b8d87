"""A course's accepted events, step by step, with the state each one left the course in.

Exports and pictures need more than the course's current facts: the state before and after
every event, the deviations it raised and the reviews it opened or closed. :func:`steps`
re-applies the course's accepted history to a fresh course on the same compiled protocol
(observer hooks are not called again), so the answer is exact and never reads the clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from iptflow.engine.course import Course
from iptflow.engine.events import parse_timestamp
from iptflow.engine.results import Deviation
from iptflow.errors import EventRejected


@dataclass(frozen=True, slots=True)
class Step:
    """One accepted event of a course."""

    seq: int
    event: dict[str, Any]
    type: str
    at: datetime
    actor: str | None
    state_before: str | None
    state: str
    deviations: tuple[Deviation, ...] = ()
    opened_reviews: tuple[str, ...] = ()
    closed_reviews: tuple[str, ...] = ()


def steps(course: Course) -> list[Step]:
    """Every accepted event of ``course`` in order (``seq`` 1 is ``course_opened``)."""
    history = course.history
    compiled = course.compiled
    fresh, opening = Course.try_open(history[0], compiled.registry, notify=False, compiled=compiled)
    if fresh is None:  # pragma: no cover - the history was accepted once
        raise EventRejected(opening)
    first = history[0]
    out = [
        Step(1, first, "course_opened", parse_timestamp(first["at"]), first.get("actor"), None,
             fresh.state)
    ]
    for raw in history[1:]:
        before = fresh.state
        result = fresh.apply(raw)
        if not result.ok:  # pragma: no cover - the history was accepted once
            raise EventRejected(result)
        out.append(
            Step(
                result.seq,  # type: ignore[union-attr]
                raw,
                raw["type"],
                parse_timestamp(raw["at"]),
                raw.get("actor"),
                before,
                fresh.state,
                result.deviations,  # type: ignore[union-attr]
                result.opened_reviews,  # type: ignore[union-attr]
                result.closed_reviews,  # type: ignore[union-attr]
            )
        )
    return out


def phase_of(course: Course, state: str) -> str:
    """The phase a state belongs to (its own name when the protocol names no phase)."""
    return course.protocol.state_def(state).phase or state


# -- what happened, in a clinician's words (the notes column of a timeline) ----------------------

#: short names clinicians use for the shipped instruments (others are shown by their id)
INSTRUMENT_LABELS: dict[str, str] = {
    "phq9": "PHQ-9", "phq9a": "PHQ-A", "hamd17": "HAM-D", "ymrs": "YMRS", "srm": "SRM",
    "ede_q": "EDE-Q", "pcl5": "PCL-5", "caps5": "CAPS-5", "binge_episodes": "binge episodes",
    "compensatory_episodes": "compensatory episodes", "epds": "EPDS",
}


def instrument_label(instrument: str) -> str:
    return INSTRUMENT_LABELS.get(instrument, instrument)


def _words(name: str) -> str:
    return name.replace("_", " ")


def _item9(event: dict[str, Any]) -> Any:
    items = event.get("items")
    if isinstance(items, list) and len(items) == 9:
        return items[8]
    return event.get("item9")


def _measure_note(event: dict[str, Any]) -> str:
    note = f"{instrument_label(str(event.get('instrument')))} {event.get('score')}"
    if event.get("instrument") not in ("phq9", "phq9a"):
        return note
    item9 = _item9(event)
    if item9 is not None:
        return note + f" (item 9: {item9})"
    return note + (" (item 9 not recorded)" if event.get("score") else "")


def _risk_note(event: dict[str, Any]) -> str:
    if event.get("safety_plan"):
        plan = "safety plan reviewed"
    elif event.get("no_plan_reason"):
        plan = f"no safety plan: {event['no_plan_reason']}"
    else:
        plan = "no safety plan"
    return f"risk {event.get('level')}, {plan}"


def _area_note(event: dict[str, Any]) -> str:
    stage = f" ({event['stage']})" if event.get("stage") else ""
    replaces = " (replaces the areas chosen before)" if event.get("replace") else ""
    return f"problem area: {_words(str(event.get('area')))}{stage}{replaces}"


def _ending_note(event: dict[str, Any]) -> str:
    parts = [f"reason: {event.get('reason')}"]
    if event.get("to"):
        parts.append(f"to {event['to']}")
    if event.get("handover"):
        parts.append(f"handed over to {event['handover']}")
    return "; ".join(parts)


def _session_note(event: dict[str, Any]) -> str:
    number = f"session {event['number']}" if event.get("number") else "session"
    techniques = event.get("techniques") or []
    return number + (f" ({', '.join(_words(t) for t in techniques)})" if techniques else "")


_NOTES: dict[str, Callable[[dict[str, Any]], str]] = {
    "measure_recorded": _measure_note,
    "risk_assessed": _risk_note,
    "risk_flagged": lambda e: f"risk flagged: {e.get('reason')}",
    "mania_flagged": lambda e: f"mania concern: {e.get('reason')}",
    "diagnosis_confirmed": lambda e: _words(str(e.get("diagnosis")))
    + (" with psychotic features" if e.get("psychotic_features") else ""),
    "session_held": _session_note,
    "problem_area_selected": _area_note,
    "formulation_agreed": lambda e: f"treatment contract: {e.get('planned_sessions')} sessions",
    "relapse_plan_recorded": lambda e: "warning signs: " + ", ".join(e.get("warning_signs") or []),
    "maintenance_started": lambda e: f"maintenance: {e.get('frequency')}, "
    f"{e.get('planned_sessions')} sessions",
    "pharmacotherapy_confirmed": lambda e: f"medication: {e.get('medication')}",
    "ending_discussed": lambda e: "the patient's feelings about ending discussed",
    "course_discontinued": _ending_note,
    "course_referred": _ending_note,
}


def event_note(
    event: dict[str, Any],
    opened: Iterable[str] = (),
    closed: Iterable[str] = (),
    review_titles: dict[str, str] | None = None,
) -> str:
    """What an accepted event recorded, in words: scores (with item 9), the problem area and
    stage, warning signs, the risk level and safety plan, and the reviews it opened or closed."""
    make = _NOTES.get(str(event.get("type")))
    parts = [make(event)] if make is not None else []
    titles = review_titles or {}
    parts += [f"opens the {titles.get(r, r + ' review')}" for r in opened]
    parts += [f"closes the {titles.get(r, r + ' review')}" for r in closed]
    return "; ".join(p for p in parts if p)


def change_in_words(change_pct: float | None) -> str:
    """``-82.4`` -> ``82% reduction``; ``12.5`` -> ``13% increase`` (halves away from zero)."""
    if change_pct is None:
        return "change not computable (baseline 0)"
    whole = int(Decimal(str(abs(change_pct))).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    if whole == 0:
        return "no change"
    return f"{whole}% {'reduction' if change_pct < 0 else 'increase'}"
