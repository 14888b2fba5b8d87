"""A clinic as it stands on one morning: simulated courses cut at a time (docs/worklist.md).

A simulated cohort (:mod:`iptflow.research.simulate`) runs every course to its end. A
worklist needs courses in progress: :func:`clinic_snapshot` simulates courses and keeps, of
each, the events recorded up to ``as_of``: the courses opened by then and not yet closed are
the clinic's active courses on that morning.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from iptflow.engine.agenda import parse_as_of
from iptflow.engine.registry import Registry, default_registry
from iptflow.research.model import TrajectoryModel
from iptflow.research.simulate import simulate_course


def clinic_snapshot(
    protocol: str,
    n: int,
    as_of: datetime | str,
    *,
    adaptations: Iterable[str] = (),
    seed: int = 0,
    model: TrajectoryModel | None = None,
    registry: Registry | None = None,
) -> list[list[dict[str, Any]]]:
    """The events, up to ``as_of``, of each of ``n`` simulated courses of ``protocol`` that is
    open and not closed at ``as_of`` (in index order; fewer than ``n`` when some had not started
    or had already ended). Store them with ``Store.import_many``."""
    when = parse_as_of(as_of)
    compiled = (registry or default_registry()).compile(protocol, tuple(adaptations))
    final = compiled.final_states
    out = []
    for index in range(n):
        course = simulate_course(compiled, model or TrajectoryModel(), seed, index)
        kept = [e for e in course.history if datetime.fromisoformat(e["at"]) <= when]
        if not kept:
            continue
        closing = kept[-1]["type"]
        closes = any(r.dest in final for routes in compiled.allowed.values()
                     for r in routes.get(closing, ()))
        if not closes:
            out.append(kept)
    return out
