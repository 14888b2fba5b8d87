"""What ``Course.apply`` returns: an :class:`Accepted` result or a :class:`Rejection`.

Rejection codes (SPEC §5) are public API: ``invalid_event``, ``not_allowed``,
``guard_failed``, ``out_of_order``, ``course_closed``, ``no_course`` and, in the store,
``conflict``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

REJECTION_CODES: tuple[str, ...] = (  # every Rejection.code (course files' expect_error)
    "invalid_event",
    "not_allowed",
    "guard_failed",
    "out_of_order",
    "course_closed",
    "no_course",
    "conflict",
)


@dataclass(frozen=True, slots=True)
class Deviation:
    """A departure from the protocol, recorded for fidelity reports; never blocking."""

    code: str
    message: str
    seq: int
    event_type: str
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "seq": self.seq,
            "event_type": self.event_type,
            "at": self.at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class Rejection:
    """A rejected event. It changed nothing."""

    code: str
    message: str
    event_type: str | None = None
    guards: tuple[str, ...] = ()
    ok: Literal[False] = field(default=False, init=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "type": self.event_type,
            "guards": list(self.guards),
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class Accepted:
    """An accepted event and what it did."""

    seq: int
    event_type: str
    state: str
    previous_state: str | None
    deviations: tuple[Deviation, ...] = ()
    opened_reviews: tuple[str, ...] = ()
    closed_reviews: tuple[str, ...] = ()
    ok: Literal[True] = field(default=True, init=False)

    @property
    def state_changed(self) -> bool:
        return self.state != self.previous_state

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "type": self.event_type,
            "state": self.state,
            "previous_state": self.previous_state,
            "deviations": [d.to_dict() for d in self.deviations],
            "opened_reviews": list(self.opened_reviews),
            "closed_reviews": list(self.closed_reviews),
        }


Result = Accepted | Rejection


@dataclass(frozen=True, slots=True)
class Outcome:
    """Baseline against the latest measure of the same instrument (SPEC §2 "Outcome")."""

    instrument: str
    baseline: int | float
    latest: int | float
    change_pct: float | None
    status: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "instrument": self.instrument,
            "baseline": self.baseline,
            "latest": self.latest,
            "change_pct": self.change_pct,
            "status": self.status,
        }
