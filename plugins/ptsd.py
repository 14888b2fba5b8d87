"""IPT for posttraumatic stress disorder (SPEC.md §4 "ptsd").

The rules are data in ``ptsd.toml``: 14 sessions, no exposure (every ``session_held`` gets the
``no_exposure`` requirement), PCL-5 and CAPS-5 with their outcome rules. This module registers
that data and the event the adaptation adds.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

import iptflow
from iptflow.engine.events import Event, EventType

DATA = Path(__file__).with_name("ptsd.toml")


class AffectAttunementIntroduced(Event):
    """The therapist introduced affect attunement (naming feelings in current interactions)."""

    type: Literal["affect_attunement_introduced"]


@iptflow.hookimpl
def register_adaptations(register: Callable[[iptflow.AdaptationDef], None]) -> None:
    register(iptflow.load_adaptation(DATA))


@iptflow.hookimpl
def register_events(register: Callable[[EventType], None]) -> None:
    register(EventType("affect_attunement_introduced", AffectAttunementIntroduced,
                       description="initial-phase task"))
