"""A course's accepted events, step by step, with the state each one left the course in.

Exports and pictures need more than the course's current facts: the state before and after
every event, the deviations it raised and the reviews it opened or closed. :func:`steps`
re-applies the course's accepted history to a fresh course on the same compiled protocol
(observer hooks are not called again), so the answer is exact and never reads the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
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
