"""Protocol pictures and listings: text, JSON, Mermaid, Graphviz DOT and SVG.

Every picture shows the states grouped by phase (``StateDef.phase``), every state-changing
transition with its event and requirement (guard) names, and the plugin provenance of what
adaptations added: states (``StateDef.added_by``), transitions (``TransitionDef.added_by``)
and requirements an adaptation added to an existing transition (its ``extra_requires``).

* Mermaid comes from transitions' ``GraphMachine(graph_engine="mermaid")``, post-processed:
  Mermaid state diagrams cannot draw transitions between states inside different composite
  states, so phases are colour classes (``classDef phase_NAME``) and named in state labels,
  added states get a dashed class and a note naming the adaptation and plugin, and added
  edges and requirements are suffixed ``(+ADAPTATION)``.
* DOT is written as text (no graphviz package needed): one ``cluster_PHASE`` subgraph per
  phase, added states and edges dashed and red with ``+ADAPTATION`` in their label.
* SVG is drawn in pure Python (no graphviz install) by ``iptflow.interop.svg``, from the
  phases, provenance and edge labels defined here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from transitions.extensions import GraphMachine

from iptflow.protocol.models import ANY_ACTIVE, ResolvedProtocol, StateDef, TransitionDef

if TYPE_CHECKING:
    from iptflow.engine.registry import Registry

PHASE_COLOURS = ("#e8f1fb", "#eaf6ea", "#fdf3e1", "#f3e9f7", "#e6f5f5", "#fbeaea", "#f1f1e4", "#eeeeee")
ADDED_COLOURS = ("#b2182b", "#2166ac", "#1b7837", "#762a83", "#b35806", "#01665e")


def state_changing(protocol: ResolvedProtocol) -> list[TransitionDef]:
    """Transitions that move a course to another state, in protocol order."""
    return [t for t in protocol.transitions if t.dest is not None]


def staying_events(protocol: ResolvedProtocol) -> tuple[list[str], dict[str, list[str]]]:
    """Events that keep a course in its state (sessions, tasks, measures, reviews...):
    ``(allowed in every active state, {state: the others it allows})``, in protocol order.
    Pictures list them beside the states, so events that change no state are shown too
    (``ending_discussed``, ``mania_flagged``...)."""
    active = [st.name for st in protocol.states if not st.final]
    by_state: dict[str, list[str]] = {name: [] for name in active}
    for t in protocol.transitions:
        if t.dest is None and t.event not in by_state[t.source[0]]:
            by_state[t.source[0]].append(t.event)
    everywhere = [e for e in by_state[active[0]] if all(e in by_state[s] for s in active)]
    return everywhere, {s: [e for e in evs if e not in everywhere] for s, evs in by_state.items()}


@dataclass
class Provenance:
    """Which adaptation (and plugin) added what to a resolved protocol."""

    plugins: dict[str, str] = field(default_factory=dict)  # adaptation id -> plugin name
    extra: dict[tuple[str, str, str], str] = field(default_factory=dict)  # (event, src, req) -> id

    @classmethod
    def of(cls, protocol: ResolvedProtocol, registry: Registry | None = None) -> Provenance:
        prov = cls()
        if registry is None:
            return prov
        active = [s.name for s in protocol.states if not s.final]
        for aid in protocol.adaptations:
            entry = registry.adaptations.get(aid)
            if entry is None:
                continue
            adaptation, plugin = entry
            prov.plugins[aid] = plugin
            for extra in adaptation.extra_requires:
                sources = active if extra.source == [ANY_ACTIVE] else extra.source
                for src in sources:
                    for req in extra.requires:
                        prov.extra.setdefault((extra.event, src, req), aid)
        return prov

    def who(self, adaptation: str) -> str:
        plugin = self.plugins.get(adaptation)
        return f"adaptation {adaptation}" + (f" (plugin {plugin})" if plugin else "")

    def requirement(self, t: TransitionDef, req: str) -> str | None:
        """The adaptation that added ``req`` to ``t`` (the whole transition's, if it added it)."""
        return self.extra.get((t.event, t.source[0], req)) or t.added_by


def phases(protocol: ResolvedProtocol) -> list[tuple[str, list[StateDef]]]:
    """States grouped by phase: phases of active states in order of appearance, final last."""
    groups: dict[str, list[StateDef]] = {}
    for state in sorted(protocol.states, key=lambda s: s.final):
        groups.setdefault(state.phase or state.name, []).append(state)
    return list(groups.items())


def edge_requirements(t: TransitionDef, prov: Provenance) -> list[str]:
    """An edge's conditions and requirements, each requirement an adaptation added marked (+ID)."""
    out = [f"{k}={v}" for k, v in t.when.items()]
    for req in t.requires:
        owner = prov.requirement(t, req)
        out.append(f"{req} (+{owner})" if owner and owner != t.added_by else req)
    return out


# --- JSON and text ----------------------------------------------------------------------------


def to_json(protocol: ResolvedProtocol, registry: Registry | None = None) -> dict[str, Any]:
    prov = Provenance.of(protocol, registry)

    def plugin(added_by: str | None) -> dict[str, Any]:
        return {"plugin": prov.plugins.get(added_by)} if added_by else {}

    return {
        "protocol": protocol.summary() | {"title": protocol.title, "base": protocol.base,
                                          "variant": protocol.variant},
        "session_range": protocol.session_range.model_dump(),
        "review_session": protocol.review_session,
        "indications": protocol.indications,
        "primary_instruments": protocol.primary_instruments,
        "adaptations": [{"id": a, "plugin": prov.plugins.get(a)} for a in protocol.adaptations],
        "phases": [{"name": name, "states": [s.name for s in states]} for name, states in phases(protocol)],
        "states": [
            {"name": s.name, "phase": s.phase, "final": s.final, "added_by": s.added_by, **plugin(s.added_by)}
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
                **plugin(t.added_by),
                "requires_added_by": {
                    r: owner for r in t.requires if (owner := prov.requirement(t, r)) is not None
                },
            }
            for t in protocol.transitions
        ],
        "resolved": protocol.model_dump(mode="json"),
    }


def to_text(protocol: ResolvedProtocol, registry: Registry | None = None) -> str:
    prov = Provenance.of(protocol, registry)
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
        origin = f" [{prov.who(state.added_by)}]" if state.added_by else ""
        lines.append(f"{state.name}{mark}{origin}")
        for t in protocol.transitions:
            if t.source[0] != state.name:
                continue
            arrow = f" -> {t.dest}" if t.dest else ""
            when = (" when " + ", ".join(f"{k}={v}" for k, v in t.when.items())) if t.when else ""
            origin = f" [{prov.who(t.added_by)}]" if t.added_by else ""
            reqs = [r for r in edge_requirements(t, prov) if r.split(" ")[0] in t.requires]
            reqs_text = f"  requires: {', '.join(reqs)}" if reqs else ""
            lines.append(f"  {t.event}{arrow}{when}{origin}{reqs_text}")
    return "\n".join(lines)


def diagram_title(protocol: ResolvedProtocol) -> str:
    """The protocol id and version, and the adaptations applied."""
    return f"{protocol.id} {protocol.version}" + (
        f" + {', '.join(protocol.adaptations)}" if protocol.adaptations else ""
    )


def colours(protocol: ResolvedProtocol) -> tuple[dict[str, str], dict[str, str]]:
    """A fill colour for each phase and a stroke colour for each adaptation."""
    names = [name for name, _ in phases(protocol)]
    phase_colour = {name: PHASE_COLOURS[i % len(PHASE_COLOURS)] for i, name in enumerate(names)}
    added = sorted(protocol.adaptations)
    added_colour = {a: ADDED_COLOURS[i % len(ADDED_COLOURS)] for i, a in enumerate(added)}
    return phase_colour, added_colour


# --- Mermaid ----------------------------------------------------------------------------------


def _mermaid_id(name: str) -> str:
    return "".join(c if c.isalnum() or c == "_" else "_" for c in name)


def to_mermaid(protocol: ResolvedProtocol, registry: Registry | None = None) -> str:
    """A Mermaid stateDiagram drawn by transitions' GraphMachine, then annotated (see module doc)."""

    prov = Provenance.of(protocol, registry)

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
        title=diagram_title(protocol),
    )
    added_edges: dict[tuple[str, str, str], str] = {}
    for t in state_changing(protocol):
        conditions = edge_requirements(t, prov)
        machine.add_transition(t.event, t.source[0], t.dest, conditions=conditions or None)
        if t.added_by:
            added_edges[(t.source[0], str(t.dest), t.event)] = t.added_by
    drawn = str(model.get_graph().draw(None))  # type: ignore[attr-defined]

    phase_colour, added_colour = colours(protocol)
    phase_of = {s.name: s.phase or s.name for s in protocol.states}
    by_name = {s.name: s for s in protocol.states}
    out: list[str] = []
    for line in drawn.splitlines():
        stripped = line.strip()
        if stripped.startswith("classDef s_") or stripped.startswith("Class "):
            continue  # GraphMachine marks a model's current state: meaningless for a protocol
        if stripped.startswith("state ") and " as " in stripped:
            name = stripped.rsplit(" as ", 1)[1]
            state = by_name.get(name)
            if state is not None:
                label = name if phase_of[name] == name else f"{name} ({phase_of[name]})"
                if state.added_by:
                    label += f" +{state.added_by}"
                out.append(f'  state "{label}" as {_mermaid_id(name)}')
                continue
        if " --> " in stripped and ": " in stripped and not stripped.startswith("[*]"):
            head, label = stripped.split(": ", 1)
            src, dest = (p.strip() for p in head.split(" --> "))
            event = label.split(" ", 1)[0]
            owner = added_edges.get((src, dest, event))
            if owner:
                line = f"  {head}: {label} (+{owner})"
        out.append(line)
    while out and not out[-1].strip():
        out.pop()
    out.append("")
    for name, states in phases(protocol):
        colour = phase_colour[name]
        out.append(f"  %% phase {name}: {', '.join(s.name for s in states)}")
        out.append(f"  classDef phase_{_mermaid_id(name)} fill:{colour},stroke:#555,color:black")
        out.append(f"  classDef phase_{_mermaid_id(name)}_added fill:{colour},stroke:#b2182b,"
                   "stroke-width:2px,stroke-dasharray:5 5,color:black")
    for state in protocol.states:
        cls = f"phase_{_mermaid_id(phase_of[state.name])}" + ("_added" if state.added_by else "")
        out.append(f"  class {_mermaid_id(state.name)} {cls}")
    for state in protocol.states:
        if state.added_by:
            out.append(f"  note right of {_mermaid_id(state.name)} : added by {prov.who(state.added_by)}")
    everywhere, staying = staying_events(protocol)
    out.append(f"  note left of {_mermaid_id(protocol.initial_state)} : in every phase: "
               f"{', '.join(everywhere)}")
    for name, events in staying.items():
        if events and name != protocol.initial_state:
            out.append(f"  note left of {_mermaid_id(name)} : {', '.join(events)}")
        elif events:
            out.append(f"  note left of {_mermaid_id(name)} : here: {', '.join(events)}")
    del added_colour
    return "\n".join(out) + "\n"


# --- DOT --------------------------------------------------------------------------------------


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(protocol: ResolvedProtocol, registry: Registry | None = None) -> str:
    """Graphviz DOT text: phases as clusters, requirement names on edges, provenance marked."""
    prov = Provenance.of(protocol, registry)
    phase_colour, added_colour = colours(protocol)
    q = _dot_quote

    def added(style: str, adaptation: str) -> list[str]:
        """DOT attributes that mark what an adaptation added: dashed, its colour, a tooltip."""
        colour = added_colour.get(adaptation, ADDED_COLOURS[0])
        return [style, f'color="{colour}"', f'fontcolor="{colour}"',
                f"tooltip={q('added by ' + prov.who(adaptation))}"]

    lines = [
        f"digraph {q(diagram_title(protocol))} {{",
        f"  label={q(diagram_title(protocol))};",
        "  labelloc=t;",
        "  rankdir=LR;",
        '  node [shape=box, style="rounded,filled", fillcolor=white, fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
        '  "__start__" [shape=point, label=""];',
    ]
    everywhere, staying = staying_events(protocol)
    for name, states in phases(protocol):
        lines.append(f"  subgraph {q('cluster_' + name)} {{")
        lines.append(f"    label={q(name + ' phase' if name != 'end' else 'end of the course')};")
        lines.append(f'    style=filled; fillcolor="{phase_colour[name]}"; color="#888888";')
        for s in states:
            attrs = []
            label = s.name
            if s.final:
                attrs.append("peripheries=2")
            if s.added_by:
                label += f"\n+{s.added_by}"
                attrs += added('style="rounded,filled,dashed"', s.added_by)
            if staying.get(s.name):
                label += "\n(" + ", ".join(staying[s.name]) + ")"
            attrs.insert(0, f"label={q(label)}")
            lines.append(f"    {q(s.name)} [{', '.join(attrs)}];")
        lines.append("  }")
    lines.append(f'  "__start__" -> {q(protocol.initial_state)};')
    lines.append(f'  "__every_phase__" [shape=note, style=filled, fillcolor=white, '
                 f'label={q("in every phase: " + ", ".join(everywhere))}];')
    for t in state_changing(protocol):
        reqs = edge_requirements(t, prov)
        label = t.event + (f"\n[{', '.join(reqs)}]" if reqs else "")
        attrs = []
        if t.added_by:
            label += f"\n+{t.added_by}"
            attrs += added("style=dashed", t.added_by)
        attrs.insert(0, f"label={q(label)}")
        lines.append(f"  {q(t.source[0])} -> {q(str(t.dest))} [{', '.join(attrs)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"
