"""The core plugin's agenda items (hook ``agenda_items``; docs/worklist.md).

The engine derives reviews, sessions, measures and the next phase itself; the core adds
``contract_missing``: a requirement built on the core's ``contract_agreed`` guard that an
event allowed now still needs (the formulation, or a formulation to agree again after the
problem areas were replaced). The requirement is found by its guard, so a protocol or variant
naming it differently gets the item too.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from iptflow.engine.agenda import AgendaItem, requirement_items
from iptflow.engine.hookspecs import hookimpl

if TYPE_CHECKING:
    from iptflow.engine.course import Course

KINDS_BY_GUARD: dict[str, str] = {"contract_agreed": "contract_missing"}
"""The core's guards whose unmet requirements are items of their own, by item kind."""

RESOLVED_BY_GUARD: dict[str, tuple[str, ...]] = {"contract_agreed": ("formulation_agreed",)}


@hookimpl
def agenda_items(course: Course, as_of: datetime) -> list[AgendaItem]:
    requirements = course.compiled.requirements
    kinds = {name: KINDS_BY_GUARD[req.guard] for name, req in requirements.items()
             if req.guard in KINDS_BY_GUARD}
    resolved = {name: RESOLVED_BY_GUARD[requirements[name].guard] for name in kinds}
    return requirement_items(course, as_of, kinds, resolved_by=resolved)
