"""IPT for posttraumatic stress disorder (SPEC.md §4 "ptsd").

The rules are data in ``ptsd-VERSION.toml``: 14 sessions, no exposure (1.0.0: a session with
"exposure" is rejected; 2.0.0: a session with an excluded technique is accepted with deviation
``excluded_technique``), PCL-5 and CAPS-5 with their outcome rules. This module registers that
data and the event the adaptation adds.
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
DATA = [Path(__file__).with_name(f"ptsd-{v}.toml") for v in ("1.0.0", "2.0.0")]

KINDS = {"affect_attunement": "affect_attunement_due"}
"""This adaptation's requirements (ptsd-VERSION.toml) that are agenda items, by kind."""


class AffectAttunementIntroduced(Event):
    """The therapist introduced affect attunement (naming feelings in current interactions)."""

    type: Literal["affect_attunement_introduced"]


@iptflow.hookimpl
def register_adaptations(register: Callable[[iptflow.AdaptationDef], None]) -> None:
    for path in DATA:
        register(iptflow.load_adaptation(path))


@iptflow.hookimpl
def register_events(register: Callable[[EventType], None]) -> None:
    register(EventType("affect_attunement_introduced", AffectAttunementIntroduced,
                       description="initial-phase task"))


@iptflow.hookimpl
def agenda_items(course: Course, as_of: datetime) -> list[AgendaItem] | None:
    """Unmet requirements of this adaptation as agenda items (docs/worklist.md)."""
    if "ptsd" not in course.protocol.adaptations:
        return None
    return requirement_items(course, as_of, KINDS)
