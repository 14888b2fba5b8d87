"""IPT for bulimia nervosa and binge-eating disorder (SPEC.md §4 "bulimia").

The rules are data in ``bulimia-VERSION.toml``: medical clearance before treatment, the eating
disorder instruments, and the group format (``treatment_started`` routed to ``pre_group``
when ``course_opened.format`` is ``group``). This module registers that data and the three
events the adaptation adds.
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
DATA = [Path(__file__).with_name(f"bulimia-{v}.toml") for v in ("1.0.0", "2.0.0")]

KINDS = {
    "medical_clearance": "clearance_missing",
    "pre_group_meeting": "pre_group_meeting_due",
}
"""This adaptation's requirements (bulimia-VERSION.toml) that are agenda items, by kind."""


class MedicalClearanceRecorded(Event):
    """Medical risk (electrolytes, heart rate, weight) was cleared for outpatient therapy."""

    type: Literal["medical_clearance_recorded"]


class PreGroupMeetingHeld(Event):
    """An individual meeting before a group course starts."""

    type: Literal["pre_group_meeting_held"]


class GroupStarted(Event):
    """pre_group -> initial: the group's first session."""

    type: Literal["group_started"]


@iptflow.hookimpl
def register_adaptations(register: Callable[[iptflow.AdaptationDef], None]) -> None:
    for path in DATA:
        register(iptflow.load_adaptation(path))


@iptflow.hookimpl
def register_events(register: Callable[[EventType], None]) -> None:
    register(EventType("medical_clearance_recorded", MedicalClearanceRecorded,
                       description="medical clearance before treatment"))
    register(EventType("pre_group_meeting_held", PreGroupMeetingHeld,
                       description="an individual pre-group meeting"))
    register(EventType("group_started", GroupStarted, description="pre_group -> initial"))


@iptflow.hookimpl
def agenda_items(course: Course, as_of: datetime) -> list[AgendaItem] | None:
    """Unmet requirements of this adaptation as agenda items (docs/worklist.md)."""
    if "bulimia" not in course.protocol.adaptations:
        return None
    return requirement_items(course, as_of, KINDS)
