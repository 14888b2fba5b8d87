"""IPT for posttraumatic stress disorder (SPEC.md §4 "ptsd").

The rules are data in ``ptsd-VERSION.toml``: 14 sessions, no exposure (1.0.0: a session with
"exposure" is rejected; 2.0.0: a session with an excluded technique is accepted with deviation
``excluded_technique``), PCL-5 and CAPS-5 with their outcome rules. This module registers that
data and the event the adaptation adds.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

import iptflow
from iptflow.engine.events import Event, EventType

# one file per version; each says which versions of the base protocol it applies to
DATA = [Path(__file__).with_name(f"ptsd-{v}.toml") for v in ("1.0.0", "2.0.0")]


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
