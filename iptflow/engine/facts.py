"""What a course knows: the facts its accepted events established.

Facts change only through accepted events (``iptflow.events`` effects and the generic
bookkeeping in ``Course``). ``to_dict`` gives the observable, JSON-ready view.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(slots=True)
class Measure:
    instrument: str
    score: int | float
    items: list[int] | None
    state: str
    at: datetime
    seq: int
    item9: int | None = None  # protocol 2.0.0: item 9 sent alone

    def to_dict(self) -> dict[str, Any]:
        out = {
            "instrument": self.instrument,
            "score": self.score,
            "items": self.items,
            "state": self.state,
            "at": self.at.isoformat(),
            "seq": self.seq,
        }
        if self.item9 is not None:
            out["item9"] = self.item9
        return out


@dataclass(slots=True)
class Session:
    number: int
    state: str
    at: datetime
    techniques: list[str]
    seq: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "state": self.state,
            "at": self.at.isoformat(),
            "techniques": list(self.techniques),
            "seq": self.seq,
        }


@dataclass(slots=True)
class Facts:
    """The mutable record of one course. Read it through ``Course.facts``; never write it."""

    course_id: str
    format: str = "individual"
    patient_age: int | None = None
    diagnosis: str | None = None
    psychotic_features: bool = False
    baseline: Measure | None = None
    measures: list[Measure] = field(default_factory=list)
    sessions: list[Session] = field(default_factory=list)
    sessions_by_state: dict[str, int] = field(default_factory=dict)
    acute_sessions: int = 0
    missed_sessions: int = 0
    missed_run: int = 0
    problem_areas: list[dict[str, str]] = field(default_factory=list)
    planned_sessions: int | None = None
    maintenance: dict[str, Any] | None = None
    open_reviews: set[str] = field(default_factory=set)
    tasks: set[str] = field(default_factory=set)
    event_counts: dict[tuple[str, str], int] = field(default_factory=dict)
    records: dict[str, Any] = field(default_factory=dict)
    last_at: datetime | None = None

    @property
    def sessions_held(self) -> int:
        return len(self.sessions)

    @property
    def last_session_at(self) -> datetime | None:
        return self.sessions[-1].at if self.sessions else None

    def count(self, event_type: str, state: str | None = None) -> int:
        """How many accepted events of a type (in a state, if given)."""
        if state is not None:
            return self.event_counts.get((event_type, state), 0)
        return sum(n for (t, _), n in self.event_counts.items() if t == event_type)

    def to_dict(self) -> dict[str, Any]:
        return {
            "course_id": self.course_id,
            "format": self.format,
            "patient_age": self.patient_age,
            "diagnosis": self.diagnosis,
            "psychotic_features": self.psychotic_features,
            "baseline": self.baseline.to_dict() if self.baseline else None,
            "measures": [m.to_dict() for m in self.measures],
            "sessions": [s.to_dict() for s in self.sessions],
            "sessions_held": self.sessions_held,
            "sessions_by_state": dict(sorted(self.sessions_by_state.items())),
            "acute_sessions": self.acute_sessions,
            "missed_sessions": self.missed_sessions,
            "missed_run": self.missed_run,
            "problem_areas": [dict(a) for a in self.problem_areas],
            "planned_sessions": self.planned_sessions,
            "maintenance": dict(self.maintenance) if self.maintenance else None,
            "open_reviews": sorted(self.open_reviews),
            "tasks": sorted(self.tasks),
            "event_counts": {
                f"{t}@{s}": n for (t, s), n in sorted(self.event_counts.items())
            },
            "records": {k: self.records[k] for k in sorted(self.records)},
            "last_at": self.last_at.isoformat() if self.last_at else None,
        }
