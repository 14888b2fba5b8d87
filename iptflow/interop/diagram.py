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
* SVG is drawn here in pure Python (no graphviz install): phases as columns, states as boxes,
  edges as curves labelled with their event; every element carries ``data-*`` attributes and
  a ``<title>`` with the requirements. The output is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from typing import TYPE_CHECKING, Any

from iptflow.protocol.models import ANY_ACTIVE, ResolvedProtocol, StateDef, TransitionDef

if TYPE_CHECKING:
    from iptflow.engine.registry import Registry

PHASE_COLOURS = ("#e8f1fb", "#eaf6ea", "#fdf3e1", "#f3e9f7", "#e6f5f5", "#fbeaea", "#f1f1e4", "#eeeeee")
ADDED_COLOURS = ("#b2182b", "#2166ac", "#1b7837", "#762a83", "#b35806", "#01665e")


def state_changing(protocol: ResolvedProtocol) -> list[TransitionDef]:
    """Transitions that move a course to another state, in protocol order."""
    return [t for t in protocol.transitions if t.dest is not None]


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


def _edge_requirements(t: TransitionDef, prov: Provenance) -> list[str]:
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
            reqs = [r for r in _edge_requirements(t, prov) if r.split(" ")[0] in t.requires]
            reqs_text = f"  requires: {', '.join(reqs)}" if reqs else ""
            lines.append(f"  {t.event}{arrow}{when}{origin}{reqs_text}")
    return "\n".join(lines)


def _title(protocol: ResolvedProtocol) -> str:
    return f"{protocol.id} {protocol.version}" + (
        f" + {', '.join(protocol.adaptations)}" if protocol.adaptations else ""
    )


def _colours(protocol: ResolvedProtocol) -> tuple[dict[str, str], dict[str, str]]:
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
    from transitions.extensions import GraphMachine

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
        title=_title(protocol),
    )
    added_edges: dict[tuple[str, str, str], str] = {}
    for t in state_changing(protocol):
        conditions = _edge_requirements(t, prov)
        machine.add_transition(t.event, t.source[0], t.dest, conditions=conditions or None)
        if t.added_by:
            added_edges[(t.source[0], str(t.dest), t.event)] = t.added_by
    drawn = str(model.get_graph().draw(None))  # type: ignore[attr-defined]

    phase_colour, added_colour = _colours(protocol)
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
    del added_colour
    return "\n".join(out) + "\n"


# --- DOT --------------------------------------------------------------------------------------


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(protocol: ResolvedProtocol, registry: Registry | None = None) -> str:
    """Graphviz DOT text: phases as clusters, requirement names on edges, provenance marked."""
    prov = Provenance.of(protocol, registry)
    phase_colour, added_colour = _colours(protocol)
    q = _dot_quote

    def added(style: str, adaptation: str) -> list[str]:
        """DOT attributes that mark what an adaptation added: dashed, its colour, a tooltip."""
        colour = added_colour.get(adaptation, ADDED_COLOURS[0])
        return [style, f'color="{colour}"', f'fontcolor="{colour}"',
                f"tooltip={q('added by ' + prov.who(adaptation))}"]

    lines = [
        f"digraph {q(_title(protocol))} {{",
        f"  label={q(_title(protocol))};",
        "  labelloc=t;",
        "  rankdir=LR;",
        '  node [shape=box, style="rounded,filled", fillcolor=white, fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
        '  "__start__" [shape=point, label=""];',
    ]
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
            attrs.insert(0, f"label={q(label)}")
            lines.append(f"    {q(s.name)} [{', '.join(attrs)}];")
        lines.append("  }")
    lines.append(f'  "__start__" -> {q(protocol.initial_state)};')
    for t in state_changing(protocol):
        reqs = _edge_requirements(t, prov)
        label = t.event + (f"\n[{', '.join(reqs)}]" if reqs else "")
        attrs = []
        if t.added_by:
            label += f"\n+{t.added_by}"
            attrs += added("style=dashed", t.added_by)
        attrs.insert(0, f"label={q(label)}")
        lines.append(f"  {q(t.source[0])} -> {q(str(t.dest))} [{', '.join(attrs)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


# --- SVG --------------------------------------------------------------------------------------

_BOX_W, _BOX_H = 150, 36
_COL_W, _GAP_X = 190, 150
_ROW_H = 70
_MARGIN = 40
_TOP = 80
_CHAR_W = 6.2  # average width of an 11px sans-serif character, for label backgrounds


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _bezier(p0: tuple[float, float], p1: tuple[float, float], p2: tuple[float, float],
            p3: tuple[float, float], t: float) -> tuple[float, float]:
    u = 1 - t
    return (
        u**3 * p0[0] + 3 * u * u * t * p1[0] + 3 * u * t * t * p2[0] + t**3 * p3[0],
        u**3 * p0[1] + 3 * u * u * t * p1[1] + 3 * u * t * t * p2[1] + t**3 * p3[1],
    )


def _path(points: list[tuple[float, float]], curve: bool = True) -> str:
    head = f"M{_fmt(points[0][0])},{_fmt(points[0][1])}"
    if curve:
        rest = " ".join(f"{_fmt(x)},{_fmt(y)}" for x, y in points[1:])
        return f"{head} C{rest}"
    return head + "".join(f" L{_fmt(x)},{_fmt(y)}" for x, y in points[1:])


def _label(out: list[str], x: float, y: float, text: str, colour: str) -> None:
    tw = len(text) * _CHAR_W + 6
    out.append(f'<rect x="{_fmt(x - tw / 2)}" y="{_fmt(y - 8)}" width="{_fmt(tw)}" height="14" '
               'fill="white" fill-opacity="0.85"/>')
    out.append(f'<text x="{_fmt(x)}" y="{_fmt(y + 3)}" text-anchor="middle" fill="{colour}">'
               f"{escape(text)}</text>")


def to_svg(protocol: ResolvedProtocol, registry: Registry | None = None) -> str:
    """A standalone SVG picture, laid out here: phases as columns, edges labelled with events.

    Edges between neighbouring columns are curves; longer forward edges run in a lane below
    the phases (one lane per destination and event, labelled once); edges within a column
    are straight; backward edges arc below the lanes.
    """
    prov = Provenance.of(protocol, registry)
    phase_colour, added_colour = _colours(protocol)
    groups = phases(protocol)
    pos: dict[str, tuple[float, float]] = {}  # state -> (x, y) of the box's top-left corner
    column: dict[str, int] = {}
    tallest = max(len(states) for _, states in groups)
    for ci, (_, states) in enumerate(groups):
        x = _MARGIN + ci * (_COL_W + _GAP_X) + (_COL_W - _BOX_W) / 2
        for ri, s in enumerate(states):
            pos[s.name] = (x, _TOP + 40 + ri * _ROW_H)
            column[s.name] = ci
    edges = state_changing(protocol)
    kinds: dict[int, str] = {}
    for i, t in enumerate(edges):
        step = column[str(t.dest)] - column[t.source[0]]
        kinds[i] = "next" if step == 1 else "long" if step > 1 else "same" if step == 0 else "back"
    lanes: list[tuple[str, str]] = []  # (dest, event) of long edges, in first-seen order
    for i, t in enumerate(edges):
        if kinds[i] == "long" and (str(t.dest), t.event) not in lanes:
            lanes.append((str(t.dest), t.event))
    backs = [i for i in range(len(edges)) if kinds[i] == "back"]
    clusters_bottom = _TOP + 40 + tallest * _ROW_H
    lane_y = {key: clusters_bottom + 24 + 22 * k for k, key in enumerate(lanes)}
    lanes_bottom = clusters_bottom + 24 + 22 * len(lanes)
    back_y = {i: lanes_bottom + 30 + 24 * k for k, i in enumerate(backs)}
    height = lanes_bottom + 30 + 24 * len(backs) + 20

    # where edge ends sit on the box sides, so that parallel edges stay apart
    ends: dict[tuple[str, str], list[int]] = {}
    for i, t in enumerate(edges):
        src, dest = t.source[0], str(t.dest)
        out_side = {"next": "right", "long": "right", "same": "vert", "back": "bottom"}[kinds[i]]
        in_side = {"next": "left", "long": "left", "same": "vert", "back": "bottom"}[kinds[i]]
        ends.setdefault((src, out_side), []).append(i)
        ends.setdefault((dest, "in-" + in_side), []).append(i)

    def spread(state: str, side: str, i: int) -> float:
        members = ends[(state, side)]
        return (members.index(i) + 1) / (len(members) + 1)

    gap_members: dict[int, list[int]] = {}
    for i, t in enumerate(edges):
        if kinds[i] == "next":
            gap_members.setdefault(column[t.source[0]], []).append(i)

    width = _MARGIN * 2 + len(groups) * _COL_W + (len(groups) - 1) * _GAP_X
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{_fmt(height)}" '
        f'viewBox="0 0 {width} {_fmt(height)}" font-family="Helvetica, Arial, sans-serif" font-size="11">',
        f"<title>{escape(_title(protocol))}</title>",
        "<defs>",
        '<marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#444"/></marker>',
    ]
    for aid, colour in added_colour.items():
        out.append(f'<marker id="arrow-{escape(aid)}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
                   f'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
                   f'fill="{colour}"/></marker>')
    out.append("</defs>")
    out.append(f'<rect width="{width}" height="{_fmt(height)}" fill="white"/>')
    out.append(f'<text x="{_MARGIN}" y="28" font-size="16" font-weight="bold">'
               f"{escape(_title(protocol))}</text>")
    if protocol.adaptations:
        legend = "; ".join(f"+{a}: {prov.who(a)}" for a in protocol.adaptations)
        out.append(f'<text x="{_MARGIN}" y="48" fill="#555">dashed = added by an adaptation. '
                   f"{escape(legend)}</text>")
    for ci, (name, states) in enumerate(groups):
        x = _MARGIN + ci * (_COL_W + _GAP_X)
        h = 40 + len(states) * _ROW_H
        title = f"{name} phase" if name != "end" else "end of the course"
        out.append(f'<g class="phase" data-phase="{escape(name)}">')
        out.append(f'<rect x="{x}" y="{_TOP}" width="{_COL_W}" height="{h}" rx="8" '
                   f'fill="{phase_colour[name]}" stroke="#999"/>')
        out.append(f'<text x="{_fmt(x + _COL_W / 2)}" y="{_TOP + 20}" text-anchor="middle" '
                   f'font-weight="bold">{escape(title)}</text>')
        out.append("</g>")

    lane_labels: dict[tuple[str, str], tuple[float, float, str, str]] = {}
    geometry: dict[int, tuple[list[tuple[float, float]], bool, tuple[float, float] | None]] = {}
    for i, t in enumerate(edges):
        src, dest = t.source[0], str(t.dest)
        (sx, sy), (dx, dy) = pos[src], pos[dest]
        colour = added_colour.get(t.added_by, "#444") if t.added_by else "#444"
        label = t.event + (f" +{t.added_by}" if t.added_by else "")
        kind = kinds[i]
        curve = True
        label_at: tuple[float, float] | None
        if kind == "next":
            p0 = (sx + _BOX_W, sy + _BOX_H * spread(src, "right", i))
            p3 = (dx, dy + _BOX_H * spread(dest, "in-left", i))
            bend = (p3[0] - p0[0]) * 0.45
            points = [p0, (p0[0] + bend, p0[1]), (p3[0] - bend, p3[1]), p3]
            label_at = _bezier(*points, 0.5)
        elif kind == "long":
            lane = lane_y[(dest, t.event)]
            p0 = (sx + _BOX_W, sy + _BOX_H * spread(src, "right", i))
            p3 = (dx, dy + _BOX_H * spread(dest, "in-left", i))
            points = [p0, (p0[0] + 25, p0[1]), (p0[0] + 25, lane), (p3[0] - 45, lane),
                      (p3[0] - 25, lane), (p3[0] - 25, p3[1]), p3]
            curve = False
            label_at = None
            lane_x = p3[0] - 25 - len(label) * _CHAR_W / 2 - 12
            lane_labels.setdefault((dest, t.event), (lane_x, lane, colour, label))
        elif kind == "same":
            down = sy < dy
            x0 = sx + _BOX_W * spread(src, "vert", i)
            p0 = (x0, sy + _BOX_H if down else sy)
            p3 = (x0, dy if down else dy + _BOX_H)
            points = [p0, p3]
            curve = False
            label_at = (x0 + len(label) * _CHAR_W / 2 + 8, (p0[1] + p3[1]) / 2)
        else:
            low = back_y[i]
            p0 = (sx + _BOX_W * spread(src, "bottom", i), sy + _BOX_H)
            p3 = (dx + _BOX_W * spread(dest, "in-bottom", i), dy + _BOX_H)
            points = [p0, (p0[0], low), (p3[0], low), p3]
            label_at = _bezier(*points, 0.5)
        geometry[i] = (points, curve, label_at)
    for members in gap_members.values():  # keep labels in one gap from overlapping
        placed = sorted(members, key=lambda k: (geometry[k][2] or (0, 0))[1])
        last_y = float("-inf")
        for k in placed:
            points, curve, at = geometry[k]
            assert at is not None
            y = max(at[1], last_y + 15)
            geometry[k] = (points, curve, (at[0], y))
            last_y = y
    for i, t in enumerate(edges):
        src, dest = t.source[0], str(t.dest)
        colour = added_colour.get(t.added_by, "#444") if t.added_by else "#444"
        label = t.event + (f" +{t.added_by}" if t.added_by else "")
        points, curve, label_at = geometry[i]
        reqs = _edge_requirements(t, prov)
        tip = f"{src} -> {dest}: {t.event}" + (f" [{', '.join(reqs)}]" if reqs else "")
        if t.added_by:
            tip += f" (added by {prov.who(t.added_by)})"
        marker = f"arrow-{t.added_by}" if t.added_by else "arrow"
        dash = ' stroke-dasharray="6 4"' if t.added_by else ""
        data = (f'data-event="{escape(t.event)}" data-source="{escape(src)}" data-dest="{escape(dest)}"'
                + (f' data-added-by="{escape(t.added_by)}"' if t.added_by else ""))
        out.append(f'<g class="edge" {data}>')
        out.append(f"<title>{escape(tip)}</title>")
        out.append(f'<path d="{_path(points, curve)}" fill="none" stroke="{colour}" stroke-width="1.3"{dash} '
                   f'marker-end="url(#{escape(marker)})"/>')
        if label_at is not None:
            _label(out, label_at[0], label_at[1], label, colour)
        out.append("</g>")
    for (dest, event), (x, y, colour, text) in lane_labels.items():
        out.append(f'<g class="lane" data-dest="{escape(dest)}" data-event="{escape(event)}">')
        _label(out, x, y, text, colour)
        out.append("</g>")
    ix, iy = pos[protocol.initial_state]
    out.append(f'<circle cx="{_fmt(ix - 18)}" cy="{_fmt(iy + _BOX_H / 2)}" r="5" fill="#222"/>')
    out.append(f'<line x1="{_fmt(ix - 13)}" y1="{_fmt(iy + _BOX_H / 2)}" x2="{_fmt(ix)}" '
               f'y2="{_fmt(iy + _BOX_H / 2)}" stroke="#222" marker-end="url(#arrow)"/>')
    for name, states in groups:
        for s in states:
            x, y = pos[s.name]
            colour = added_colour.get(s.added_by, "#333") if s.added_by else "#333"
            dash = ' stroke-dasharray="5 3"' if s.added_by else ""
            width_px = "2.5" if s.final else "1.2"
            data = f'data-state="{escape(s.name)}" data-phase="{escape(name)}"' + (
                f' data-added-by="{escape(s.added_by)}"' if s.added_by else "")
            tip = f"{s.name} ({name} phase)" + (f", added by {prov.who(s.added_by)}" if s.added_by else "")
            if s.description:
                tip += f": {s.description}"
            out.append(f'<g class="state" {data}>')
            out.append(f"<title>{escape(tip)}</title>")
            out.append(f'<rect x="{_fmt(x)}" y="{_fmt(y)}" width="{_BOX_W}" height="{_BOX_H}" rx="10" '
                       f'fill="white" stroke="{colour}" stroke-width="{width_px}"{dash}/>')
            text_y = y + (_BOX_H / 2 + 4 if not s.added_by else _BOX_H / 2 - 1)
            out.append(f'<text x="{_fmt(x + _BOX_W / 2)}" y="{_fmt(text_y)}" text-anchor="middle" '
                       f'font-size="12" fill="{colour}">{escape(s.name)}</text>')
            if s.added_by:
                out.append(f'<text x="{_fmt(x + _BOX_W / 2)}" y="{_fmt(y + _BOX_H - 5)}" '
                           f'text-anchor="middle" font-size="9" fill="{colour}">+{escape(s.added_by)}</text>')
            out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"
