"""The worklist of a store: every active course's agenda as of one time (docs/worklist.md).

``Store.worklist(as_of, actor=..., severities=...)`` reads the course rows once, skips closed
courses by their row's state (the final states of the protocol each was opened under), loads
each active course by replaying its log under its pinned protocol (``Store.get``) and asks it
for its agenda (``Course.agenda``). Entries come urgent first, then due, then info, by due
time, then by course id.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from iptflow.engine.agenda import SEVERITIES, AgendaItem, parse_as_of
from iptflow.store.errors import InvalidArgument

if TYPE_CHECKING:
    from iptflow.engine.course import Course
    from iptflow.store.reading import StoreReader


@dataclass(frozen=True, slots=True)
class WorklistEntry:
    """One item of one course, with what a clinic list shows beside it."""

    course_id: str
    actor: str | None
    state: str
    protocol: str
    item: AgendaItem

    def to_dict(self) -> dict[str, Any]:
        return {"course_id": self.course_id, "actor": self.actor, "state": self.state,
                "protocol": self.protocol, **self.item.to_dict()}


@dataclass(frozen=True, slots=True)
class Worklist:
    """What every active course needs as of ``as_of``.

    ``courses`` counts the active courses looked at (after ``actor``), ``entries`` the items
    kept (after ``severities``).
    """

    as_of: datetime
    courses: int
    entries: tuple[WorklistEntry, ...]

    def counts(self) -> dict[str, int]:
        """Items per severity, every severity named."""
        out = dict.fromkeys(SEVERITIES, 0)
        for entry in self.entries:
            out[entry.item.severity] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        text = self.as_of.isoformat()
        return {
            "as_of": text[:-6] + "Z" if text.endswith("+00:00") else text,
            "courses": self.courses,
            "counts": self.counts(),
            "items": [e.to_dict() for e in self.entries],
        }


def course_actor(course: Course) -> str | None:
    """The clinician of a course: the ``actor`` of its latest event that names one."""
    for raw in reversed(course.history):
        actor = raw.get("actor")
        if isinstance(actor, str) and actor:
            return actor
    return None


def _severities(severities: Iterable[str] | None) -> frozenset[str]:
    if severities is None:
        return frozenset(SEVERITIES)
    if isinstance(severities, str):
        severities = [severities]
    chosen = frozenset(severities)
    unknown = sorted(s for s in chosen if s not in SEVERITIES)
    if unknown or not all(isinstance(s, str) for s in chosen):
        raise InvalidArgument(
            f"unknown severity {', '.join(map(repr, unknown))} (known: {', '.join(SEVERITIES)})",
            argument="severities",
        )
    return chosen


def worklist(
    store: StoreReader,
    as_of: datetime | str,
    *,
    actor: str | None = None,
    severities: Iterable[str] | None = None,
) -> Worklist:
    """Every active course's agenda items as of ``as_of``, in worklist order.

    :param actor: only courses whose clinician (:func:`course_actor`) is this actor.
    :param severities: only items of these severities (default: all).
    Raises :class:`~iptflow.errors.InvalidAsOf` for an unusable time or one earlier than a
    course's last accepted event (naming the course), and :class:`InvalidArgument` for an
    unknown severity.
    """
    when = parse_as_of(as_of)
    keep = _severities(severities)
    entries: list[WorklistEntry] = []
    looked_at = 0
    for row in store.list():
        compiled = store.protocols.compiled(row.fingerprint, row.id)
        if row.state in compiled.final_states:
            continue
        course = store.get(row.id)
        who = course_actor(course)
        if actor is not None and who != actor:
            continue
        looked_at += 1
        protocol = f"{course.protocol.id}@{course.protocol.version}"
        entries.extend(
            WorklistEntry(course.course_id, who, course.state, protocol, item)
            for item in course.agenda(when)
            if item.severity in keep
        )
    entries.sort(key=lambda e: (*e.item.sort_key()[:4], e.course_id, e.item.kind))
    return Worklist(when, looked_at, tuple(entries))
