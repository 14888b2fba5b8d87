"""Protocol lint: problems a resolved protocol's data has, found without running a course.

``lint(resolved)`` returns a list of :class:`Finding` (``code``, ``message``, ``place``):

===========================  ================================================================
code                         finding
===========================  ================================================================
unresolvable                 the protocol cannot be resolved at all (``lint_protocol`` only)
undefined_state              a transition, the initial state or an acute state names a state
                             that is not defined
unreachable_state            no chain of transitions leads from the initial state to the state
dead_end_state               a non-final state no transition leaves (ways out every active
                             state has, like discontinuation, do not count)
event_allowed_nowhere        an event the protocol refers to (tasks, reviews, requirements) or
                             that an enabled adaptation's plugin registers, in no transition
undefined_requirement        a transition or ``open_requires`` names an undefined requirement
unknown_guard                a requirement names a guard no plugin registers
unknown_check                a deviation names a check no plugin registers
undefined_instrument         a primary instrument is not defined
undefined_review             an instrument opens a review that is not defined
final_initial_state,         the other broken references (see :mod:`iptflow.protocol.references`:
event_from_final_state,      the compiler and ``iptflow check`` report the same ones, with the
unknown_event,               same messages)
unknown_course_attribute,
bad_params
review_session_out_of_range  the review session lies beyond the session range's max
requirement_never_holds      a session requirement asks for more sessions than the range allows
requirements_conflict        requirements that cannot hold together on the way through a state
===========================  ================================================================

Nothing is evaluated: lint reads the protocol's data and the registry's names. Broken
references come from the shared checker, :func:`iptflow.protocol.references.check_references`.
What cannot run at all is an error, not a finding: an empty session range (min above max), an
empty list of indications or a parameter of the wrong type or out of range stop a protocol
from loading (``iptflow check`` reports them with exit 2; ``lint_protocol`` as
``unresolvable``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from iptflow.engine.facts import Facts
from iptflow.engine.registry import Registry, default_registry
from iptflow.errors import IptflowError
from iptflow.protocol.models import ResolvedProtocol
from iptflow.protocol.references import check_references


@dataclass(frozen=True, slots=True)
class Finding:
    """One lint finding: a stable ``code``, a message and the place in the protocol."""

    code: str
    message: str
    place: str

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "place": self.place}

    def __str__(self) -> str:
        return f"{self.place}: {self.code}: {self.message}"


def lint_protocol(
    protocol_id: str, adaptations: list[str] | tuple[str, ...] = (), registry: Registry | None = None
) -> list[Finding]:
    """Resolve and lint; a protocol that cannot be resolved gives one ``unresolvable`` finding."""
    registry = registry or default_registry()
    try:
        resolved = registry.resolve(protocol_id, adaptations)
    except IptflowError as exc:
        place = "+".join([protocol_id, *adaptations])
        return [Finding("unresolvable", exc.message, place)]
    return lint(resolved, registry)


def _tname(t: Any) -> str:
    dest = f" to {t.dest}" if t.dest else ""
    return f"transitions[{t.event} from {t.source[0]}{dest}]"


def lint(resolved: ResolvedProtocol, registry: Registry | None = None) -> list[Finding]:
    """Every finding for a resolved protocol, in a stable order."""
    registry = registry or default_registry()
    return [
        *_reference_findings(resolved, registry),
        *_graph_findings(resolved),
        *_event_findings(resolved, registry),
        *_session_findings(resolved, {s.name for s in resolved.states if s.final}),
    ]


def _place(p: ResolvedProtocol, path: tuple[str | int, ...]) -> str:
    """Where a reference finding's field path is, in lint's terms (``transitions[e from s]``)."""
    if not path:
        return p.id
    head, rest = path[0], path[1:]
    if head == "transitions" and rest and isinstance(rest[0], int):
        return _tname(p.transitions[rest[0]])
    if head == "deviations" and rest and isinstance(rest[0], int):
        return f"deviations.{p.deviations[rest[0]].code}"
    return f"{head}.{rest[0]}" if rest and isinstance(rest[0], str) else str(head)


def _reference_findings(p: ResolvedProtocol, registry: Registry) -> list[Finding]:
    found = check_references(
        p,
        guards={name: entry[0] for name, entry in registry.guards.items()},
        checks={name: entry[0] for name, entry in registry.checks.items()},
        event_types=registry.event_types,
        course_attributes=Facts.__dataclass_fields__,
    )
    return [Finding(f.code, f.message, _place(p, f.path)) for f in found]


def _graph_findings(p: ResolvedProtocol) -> list[Finding]:
    """States no chain of transitions reaches, and active states nothing leads out of."""
    out: list[Finding] = []
    graph: dict[str, set[str]] = {}
    exits: dict[str, set[tuple[str, str]]] = {}
    for t in p.transitions:
        if t.dest is not None and t.dest != t.source[0]:
            graph.setdefault(t.source[0], set()).add(t.dest)
            exits.setdefault(t.source[0], set()).add((t.event, t.dest))
    active = [s.name for s in p.states if not s.final]
    # ways out every active state has (discontinuation, referral) do not count as a way forward
    everywhere = set.intersection(*(exits.get(s, set()) for s in active)) if active else set()
    seen = {p.initial_state}
    queue = deque([p.initial_state])
    while queue:
        for nxt in sorted(graph.get(queue.popleft(), ())):
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    for s in p.states:
        if s.name not in seen:
            out.append(Finding("unreachable_state",
                               f"no transition leads from {p.initial_state} to {s.name}",
                               f"states.{s.name}"))
        if not s.final and not exits.get(s.name, set()) - everywhere:
            ends = ", ".join(sorted(e for e, _ in everywhere))
            out.append(Finding("dead_end_state",
                               f"{s.name} is not final, but no transition leaves it"
                               + (f" except those allowed everywhere ({ends})" if ends else ""),
                               f"states.{s.name}"))
    return out


def _event_findings(p: ResolvedProtocol, registry: Registry) -> list[Finding]:
    """Events the protocol or an enabled adaptation's plugin refers to that no transition allows."""
    in_transitions = {t.event for t in p.transitions}
    referred: dict[str, str] = {}
    for ev in p.task_events:
        referred.setdefault(ev, "task_events")
    for name, review in sorted(p.reviews.items()):
        for ev in [*review.opened_by, *review.closed_by]:
            referred.setdefault(ev, f"reviews.{name}")
    for name, req in sorted(p.requirements.items()):
        ev = req.params.get("event_type")
        if isinstance(ev, str):
            referred.setdefault(ev, f"requirements.{name}")
    adaptation_plugins = {registry.adaptations[a][1] for a in p.adaptations if a in registry.adaptations}
    # an event another version of the plugin's adaptations allows is absent from this one on purpose
    other_versions = {t.event for versions in registry.adaptation_versions.values()
                      for a, plugin in versions if plugin in adaptation_plugins for t in a.transitions}
    for ev, plugin in sorted(registry.event_plugins.items()):
        if plugin in adaptation_plugins and ev not in other_versions - in_transitions:
            referred.setdefault(ev, f"plugin {plugin}")
    return [Finding("event_allowed_nowhere", f"{ev} is referred to but no transition allows it", place)
            for ev, place in sorted(referred.items())
            if ev not in in_transitions and ev != "course_opened"]


def _session_findings(p: ResolvedProtocol, final: set[str]) -> list[Finding]:
    out: list[Finding] = []
    rng = p.session_range
    if p.review_session > rng.max:
        out.append(Finding("review_session_out_of_range",
                           f"the review session {p.review_session} lies beyond the session range "
                           f"{rng.min}-{rng.max}: response would never be reviewed", "review_session"))
    for name, req in sorted(p.requirements.items()):
        params = req.params
        if req.guard == "sessions_held_at_least" and params.get("state") in (None, *p.acute_states):
            count = params.get("count")
            if isinstance(count, int) and count > rng.max:
                out.append(Finding("requirement_never_holds",
                                   f"requires {count} sessions, but the session range allows at most "
                                   f"{rng.max}", f"requirements.{name}"))
        if req.guard in ("remaining_sessions_above", "remaining_sessions_at_most"):
            sessions = params.get("sessions")
            if isinstance(sessions, int) and (sessions < 0 or (
                    req.guard == "remaining_sessions_above" and sessions >= rng.max)):
                out.append(Finding("requirement_never_holds",
                                   f"{sessions} remaining sessions cannot be reconciled with the session "
                                   f"range {rng.min}-{rng.max}", f"requirements.{name}"))
    # a state entered with at most k contracted sessions remaining cannot then hold more than k
    for t_in in p.transitions:
        if t_in.dest is None or t_in.dest not in p.acute_states:
            continue
        window = [p.requirements[r].params.get("sessions") for r in t_in.requires
                  if r in p.requirements and p.requirements[r].guard == "remaining_sessions_at_most"]
        window = [w for w in window if isinstance(w, int)]
        if not window:
            continue
        for t_out in p.transitions:
            if t_out.source[0] != t_in.dest:
                continue
            for r in t_out.requires:
                req = p.requirements.get(r)
                if req is None or req.guard != "sessions_held_at_least":
                    continue
                count = req.params.get("count")
                if req.params.get("state") == t_in.dest and isinstance(count, int) and count > min(window):
                    out.append(Finding(
                        "requirements_conflict",
                        f"{t_out.event} needs {count} sessions in {t_in.dest}, but {t_in.event} "
                        f"allows at most {min(window)} contracted sessions to remain",
                        _tname(t_out)))
    return out
