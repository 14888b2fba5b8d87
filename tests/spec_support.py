"""Helpers for the SPEC tests: a course driver with its own clock and builders of base events.

Nothing here decides a test's answer: it only saves typing the events SPEC §1 defines.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from iptflow import Course
from iptflow.engine.results import Accepted, Rejection

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
PROTOCOL = "ipt-depression@1.0.0"  # the rules these tests describe are 1.0.0 rules


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def opened(course_id: str = "c-1", at: datetime = T0, **fields: Any) -> dict[str, Any]:
    return {"type": "course_opened", "at": iso(at), "course_id": course_id, "protocol": PROTOCOL,
            **fields}


def items_for(score: int, count: int, item_max: int, last: int = 0) -> list[int]:
    """Items summing to ``score`` with the last item fixed (phq9 item 9 is the risk item)."""
    items = [0] * count
    items[-1] = last
    rest = score - last
    for i in range(count - 1):
        take = min(item_max, rest)
        items[i] = take
        rest -= take
    if rest:
        raise ValueError(f"score {score} does not fit {count} items of 0-{item_max}")
    return items


def phq9(score: int, item9: int = 0, with_items: bool = True) -> dict[str, Any]:
    fields: dict[str, Any] = {"instrument": "phq9", "score": score}
    if with_items:
        fields["items"] = items_for(score, 9, 3, item9)
    return fields


def hamd17(score: int, with_items: bool = True) -> dict[str, Any]:
    fields: dict[str, Any] = {"instrument": "hamd17", "score": score}
    if with_items:
        fields["items"] = items_for(score, 17, 4)
    return fields


class Driver:
    """A course plus a clock: every event is sent an hour after the previous one."""

    def __init__(self, course_id: str = "c-1", **open_fields: Any) -> None:
        self.now = T0
        self.course = Course.open(opened(course_id, self.now, **open_fields))

    # -- time ----------------------------------------------------------------------------
    def advance(self, days: float = 0, hours: float = 0, seconds: float = 0) -> None:
        self.now += timedelta(days=days, hours=hours, seconds=seconds)

    def event(self, etype: str, **fields: Any) -> dict[str, Any]:
        if "at" not in fields:
            self.advance(hours=1)
            fields["at"] = iso(self.now)
        return {"type": etype, **fields}

    # -- sending -------------------------------------------------------------------------
    def send(self, etype: str, **fields: Any) -> Accepted | Rejection:
        return self.course.apply(self.event(etype, **fields))

    def ok(self, etype: str, **fields: Any) -> Accepted:
        result = self.send(etype, **fields)
        assert result.ok, f"{etype} rejected: {result.code}: {result.message}"
        return result  # type: ignore[return-value]

    def rejected(self, code: str, etype: str, **fields: Any) -> Rejection:
        before = self.course.snapshot()
        result = self.send(etype, **fields)
        assert not result.ok, f"{etype} was accepted, expected {code}"
        assert result.code == code, f"{etype}: expected {code}, got {result.code}: {result.message}"
        assert self.course.snapshot() == before, "a rejected event changed the course"
        return result  # type: ignore[return-value]

    def sessions(self, count: int, days_apart: float = 7) -> None:
        for _ in range(count):
            self.advance(days=days_apart)
            self.ok("session_held")

    # -- reaching a state ----------------------------------------------------------------
    def assess(self, baseline: dict[str, Any] | None = None) -> None:
        self.ok("measure_recorded", **(baseline or phq9(18)))
        self.ok("diagnosis_confirmed", diagnosis="major_depressive_disorder")

    def to_initial(self, baseline: dict[str, Any] | None = None) -> None:
        self.assess(baseline)
        self.ok("treatment_started")

    def initial_tasks(self, planned: int = 12, area: str = "role_transition") -> None:
        self.ok("sick_role_given")
        self.ok("interpersonal_inventory_completed")
        self.ok("problem_area_selected", area=area)
        self.ok("formulation_agreed", planned_sessions=planned)

    def to_middle(self, sessions: int = 3, planned: int = 12, baseline: dict[str, Any] | None = None,
                  ) -> None:
        self.to_initial(baseline)
        self.sessions(sessions)
        self.initial_tasks(planned)
        self.ok("middle_phase_started")

    def to_termination(self, planned: int = 12, baseline: dict[str, Any] | None = None) -> None:
        """Middle phase until exactly 4 contracted sessions remain, then termination."""
        self.to_middle(3, planned, baseline)
        self.ok("measure_recorded", **phq9(9))  # 50% better: no non_response at session 8
        self.sessions(planned - 4 - 3)
        self.ok("termination_started")

    def termination_tasks(self, sessions: int = 2, measure: dict[str, Any] | None = None) -> None:
        self.sessions(sessions)
        self.ok("progress_reviewed")
        self.ok("relapse_plan_recorded", warning_signs=["early waking"])
        self.ok("measure_recorded", **(measure or phq9(4)))

    def to_maintenance(self, planned: int = 3) -> None:
        self.to_termination()
        self.termination_tasks()
        self.ok("maintenance_started", frequency="monthly", planned_sessions=planned)


def write_course(path: Path, lines: list[Any]) -> Path:
    """Write a course file: dicts become JSON lines, strings are written as they are."""
    text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines)
    path.write_text(text + "\n", encoding="utf-8")
    return path
