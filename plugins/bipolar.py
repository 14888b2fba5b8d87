"""IPSRT, interpersonal and social rhythm therapy for bipolar disorder (SPEC.md §4 "bipolar").

The rules are data in ``bipolar.toml`` (the preventive state, the mania review opened by a
YMRS score of 12 or more, the SRM requirement); this module registers that data and the two
events the adaptation adds.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import StrictStr

import iptflow
from iptflow.engine.course import Course
from iptflow.engine.events import Event, EventType

DATA = Path(__file__).with_name("bipolar.toml")


class PharmacotherapyConfirmed(Event):
    """Psychiatric medication management is in place (IPSRT is an adjunct to medication)."""

    type: Literal["pharmacotherapy_confirmed"]
    medication: StrictStr


class ManiaAssessed(Event):
    """A clinician assessed the mania signal; closes the open mania review."""

    type: Literal["mania_assessed"]
    notes: StrictStr | None = None


class PreventivePhaseStarted(Event):
    """middle -> preventive: less frequent sessions outside the acute contract."""

    type: Literal["preventive_phase_started"]


def record_medication(course: Course, event: PharmacotherapyConfirmed) -> None:
    course.facts.records["medication"] = event.medication


@iptflow.hookimpl
def register_adaptations(register: Callable[[iptflow.AdaptationDef], None]) -> None:
    register(iptflow.load_adaptation(DATA))


@iptflow.hookimpl
def register_events(register: Callable[[EventType], None]) -> None:
    register(EventType("pharmacotherapy_confirmed", PharmacotherapyConfirmed,
                       effect=record_medication, description="medication management confirmed"))
    register(EventType("mania_assessed", ManiaAssessed, description="closes the mania review"))
    register(EventType("preventive_phase_started", PreventivePhaseStarted,
                       description="middle -> preventive"))
