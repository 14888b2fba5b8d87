"""IPSRT, interpersonal and social rhythm therapy for bipolar disorder (SPEC.md §4 "bipolar").

The rules are data in ``bipolar-VERSION.toml`` (the preventive state, the mania review opened by a
YMRS score of 12 or more or, in 2.0.0, by mania_flagged; the SRM requirement); this module
registers that data and the events the adaptation adds.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, StrictStr

import iptflow
from iptflow.engine.agenda import AgendaItem, requirement_items
from iptflow.engine.course import Course
from iptflow.engine.events import Event, EventType

# one file per version; each says which versions of the base protocol it applies to
DATA = [Path(__file__).with_name(f"bipolar-{v}.toml") for v in ("1.0.0", "2.0.0")]

KINDS = {
    "pharmacotherapy_confirmed": "pharmacotherapy_missing",
    "social_rhythm_measured": "social_rhythm_due",
}
"""This adaptation's requirements (bipolar-VERSION.toml) that are agenda items, by kind."""
RESOLVED_BY = {"social_rhythm_measured": ("measure_recorded",)}


class PharmacotherapyConfirmed(Event):
    """Psychiatric medication management is in place (IPSRT is an adjunct to medication)."""

    type: Literal["pharmacotherapy_confirmed"]
    medication: StrictStr


class ManiaAssessed(Event):
    """A clinician assessed the mania signal; closes the open mania review."""

    type: Literal["mania_assessed"]
    notes: StrictStr | None = None


class ManiaFlagged(Event):
    """A clinician raises a mania concern without a YMRS score (bipolar 2.0.0): opens the
    mania review."""

    type: Literal["mania_flagged"]
    reason: Annotated[StrictStr, Field(min_length=1)]


class PreventivePhaseStarted(Event):
    """middle -> preventive: less frequent sessions outside the acute contract."""

    type: Literal["preventive_phase_started"]


def record_medication(course: Course, event: PharmacotherapyConfirmed) -> None:
    course.facts.records["medication"] = event.medication


@iptflow.hookimpl
def register_adaptations(register: Callable[[iptflow.AdaptationDef], None]) -> None:
    for path in DATA:
        register(iptflow.load_adaptation(path))


@iptflow.hookimpl
def register_events(register: Callable[[EventType], None]) -> None:
    register(EventType("pharmacotherapy_confirmed", PharmacotherapyConfirmed,
                       effect=record_medication, description="medication management confirmed"))
    register(EventType("mania_assessed", ManiaAssessed, description="closes the mania review"))
    register(EventType("mania_flagged", ManiaFlagged, description="opens the mania review"))
    register(EventType("preventive_phase_started", PreventivePhaseStarted,
                       description="middle -> preventive"))


@iptflow.hookimpl
def agenda_items(course: Course, as_of: datetime) -> list[AgendaItem] | None:
    """Unmet requirements of this adaptation as agenda items (docs/worklist.md)."""
    if "bipolar" not in course.protocol.adaptations:
        return None
    return requirement_items(course, as_of, KINDS, resolved_by=RESOLVED_BY)
