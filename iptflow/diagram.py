"""Protocol pictures and listings: text, JSON and Mermaid (from transitions' GraphMachine)."""

from __future__ import annotations

from typing import Any

from .protocol import ResolvedProtocol


def state_changing(protocol: ResolvedProtocol) -> list[Any]:
    """Transitions that move a course to another state, in protocol order."""
    return [t for t in protocol.transitions if t.dest is not None]


def to_json(protocol: ResolvedProtocol) -> dict[str, Any]:
    return {
        "protocol": protocol.summary() | {"title": protocol.title, "base": protocol.base,
                                          "variant": protocol.variant},
        "session_range": protocol.session_range.model_dump(),
        "review_session": protocol.review_session,
        "indications": protocol.indications,
        "primary_instruments": protocol.primary_instruments,
        "states": [
            {"name": s.name, "phase": s.phase, "final": s.final, "added_by": s.added_by}
            for s in protocol.states
        ],
        "transitions": [
            {
                "event": t.event,
                "source": t.source[0],
                "dest": t.dest,
                "requires": t.requires,
                "when": t.when,
                "added_by": t.added_by,
            }
            for t in protocol.transitions
        ],
        "resolved": protocol.model_dump(mode="json"),
    }


def to_text(protocol: ResolvedProtocol) -> str:
    rng = protocol.session_range
    lines = [
        f"{protocol.id} {protocol.version}: {protocol.title}",
        f"  adaptations: {', '.join(protocol.adaptations) or 'none'}",
        f"  fingerprint: {protocol.fingerprint}",
        f"  indications: {', '.join(protocol.indications)}",
        f"  sessions: {rng.min}-{rng.max}, review at session {protocol.review_session}",
        f"  primary instruments: {', '.join(protocol.primary_instruments)}",
        f"  problem areas: {', '.join(protocol.problem_areas)}",
        "",
    ]
    for state in protocol.states:
        mark = " (final)" if state.final else ""
        origin = f" [{state.added_by}]" if state.added_by else ""
        lines.append(f"{state.name}{mark}{origin}")
        for t in protocol.transitions:
            if t.source[0] != state.name:
                continue
            arrow = f" -> {t.dest}" if t.dest else ""
            when = (" when " + ", ".join(f"{k}={v}" for k, v in t.when.items())) if t.when else ""
            reqs = f"  requires: {', '.join(t.requires)}" if t.requires else ""
            origin = f" [{t.added_by}]" if t.added_by else ""
            lines.append(f"  {t.event}{arrow}{when}{origin}{reqs}")
    return "\n".join(lines)


def to_mermaid(protocol: ResolvedProtocol) -> str:
    """A Mermaid stateDiagram drawn by transitions' GraphMachine, guard names on the edges."""
    from transitions.extensions import GraphMachine

    class _Diagram:
        pass

    model = _Diagram()
    machine = GraphMachine(
        model=model,
        states=[s.name for s in protocol.states],
        initial=protocol.initial_state,
        auto_transitions=False,
        graph_engine="mermaid",
        show_conditions=True,
        title=f"{protocol.id} {protocol.version}"
        + (f" + {', '.join(protocol.adaptations)}" if protocol.adaptations else ""),
    )
    for t in state_changing(protocol):
        conditions = list(t.requires) + [f"{k}={v}" for k, v in t.when.items()]
        machine.add_transition(t.event, t.source[0], t.dest, conditions=conditions or None)
    return str(model.get_graph().draw(None))  # type: ignore[attr-defined]
