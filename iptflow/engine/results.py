"""What ``Course.apply`` returns: an :class:`Accepted` result or a :class:`Rejection`.

Rejection codes (SPEC §5) are public API: ``invalid_event``, ``not_allowed``,
``guard_failed``, ``out_of_order``, ``course_closed``, ``no_course`` and, in the store,
``conflict``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Literal

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


_ACCEPTED_FIELDS = ("seq", "event_type", "state", "previous_state", "deviations",
                    "opened_reviews", "closed_reviews")


class Accepted(tuple):  # noqa: SLOT001 - __slots__ is empty: the fields are the tuple's items
    """An accepted event and what it did.

    Immutable, with the fields ``seq``, ``event_type``, ``state``, ``previous_state``,
    ``deviations``, ``opened_reviews``, ``closed_reviews`` and ``ok`` (always ``True``); equal
    only to an ``Accepted`` with the same fields. Built once per accepted event, so it is a
    tuple underneath (a frozen dataclass cost several times as much to construct).
    """

    __slots__ = ()
    __match_args__ = _ACCEPTED_FIELDS
    ok: Literal[True] = True

    if TYPE_CHECKING:
        seq: int
        event_type: str
        state: str
        previous_state: str | None
        deviations: tuple[Deviation, ...]
        opened_reviews: tuple[str, ...]
        closed_reviews: tuple[str, ...]
    else:
        seq, event_type, state, previous_state, deviations, opened_reviews, closed_reviews = (
            property(itemgetter(i), doc=f"the result's {name}")
            for i, name in enumerate(_ACCEPTED_FIELDS)
        )

    def __new__(
        cls,
        seq: int,
        event_type: str,
        state: str,
        previous_state: str | None,
        deviations: tuple[Deviation, ...] = (),
        opened_reviews: tuple[str, ...] = (),
        closed_reviews: tuple[str, ...] = (),
    ) -> Accepted:
        return tuple.__new__(
            cls, (seq, event_type, state, previous_state, deviations, opened_reviews,
                  closed_reviews)
        )

    def __getnewargs__(self) -> tuple[Any, ...]:  # copy and pickle
        return tuple(self)

    def __eq__(self, other: object) -> bool:
        if type(other) is Accepted:
            return tuple.__eq__(self, other)
        return False if isinstance(other, tuple) else NotImplemented

    def __ne__(self, other: object) -> bool:
        if type(other) is Accepted:
            return tuple.__ne__(self, other)
        return True if isinstance(other, tuple) else NotImplemented

    __hash__ = tuple.__hash__

    def __lt__(self, other: object) -> bool:  # not ordered, as the dataclass was not
        return NotImplemented

    __le__ = __gt__ = __ge__ = __lt__

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={v!r}" for n, v in zip(_ACCEPTED_FIELDS, self, strict=True))
        return f"Accepted({fields}, ok=True)"

    @property
    def state_changed(self) -> bool:
        return self[2] != self[3]

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
