"""IPT-A, interpersonal psychotherapy for depressed adolescents (SPEC.md §4 "adolescent").

The rules are data in ``adolescent-VERSION.toml``; this module registers that data and the two
events the adaptation adds. It uses only guards of iptflow's core.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Literal

import iptflow
from iptflow.engine.agenda import AgendaItem, requirement_items
from iptflow.engine.course import Course
from iptflow.engine.events import Event, EventType

# one file per version; each says which versions of the base protocol it applies to
DATA = [Path(__file__).with_name(f"adolescent-{v}.toml") for v in ("1.0.0", "2.0.0")]

KINDS = {
    "guardian_consent": "consent_missing",
    "parent_session_before_middle": "parent_session_due",
    "parent_session_in_termination": "parent_session_due",
}
"""This adaptation's requirements (adolescent-VERSION.toml) that are agenda items, by kind."""


class GuardianConsentRecorded(Event):
    """A parent or guardian consented to the adolescent's treatment."""

    type: Literal["guardian_consent_recorded"]


class ParentSessionHeld(Event):
    """A session with a parent or guardian (at the start, in the middle, at the end)."""

    type: Literal["parent_session_held"]


@iptflow.hookimpl
def register_adaptations(register: Callable[[iptflow.AdaptationDef], None]) -> None:
    for path in DATA:
        register(iptflow.load_adaptation(path))


@iptflow.hookimpl
def register_events(register: Callable[[EventType], None]) -> None:
    register(EventType("guardian_consent_recorded", GuardianConsentRecorded,
                       description="a guardian's consent to treatment"))
    register(EventType("parent_session_held", ParentSessionHeld,
                       description="a session with a parent or guardian"))


@iptflow.hookimpl
def agenda_items(course: Course, as_of: datetime) -> list[AgendaItem] | None:
    """Unmet requirements of this adaptation as agenda items (docs/worklist.md)."""
    if "adolescent" not in course.protocol.adaptations:
        return None
    return requirement_items(course, as_of, KINDS)
