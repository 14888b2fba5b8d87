"""Protocol pictures as SVG, laid out here in pure Python (no graphviz install).

Phases are columns, states are boxes, edges are lines labelled with their event; every element
carries ``data-*`` attributes and a ``<title>`` with the requirements. Edges between
neighbouring columns are curves; longer forward edges run in a lane below the phases (one lane
per destination and event, labelled once); edges within a column are straight; backward edges
arc below the lanes. The output is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING

from iptflow.interop.diagram import (
    Provenance,
    colours,
    diagram_title,
    edge_requirements,
    phases,
    state_changing,
    staying_events,
)
from iptflow.protocol.models import ResolvedProtocol, StateDef, TransitionDef

if TYPE_CHECKING:
    from iptflow.engine.registry import Registry

_BOX_W, _BOX_H = 150, 36
_COL_W, _GAP_X = 190, 150
_ROW_H = 70
_MARGIN = 40
_TOP = 80
_CHAR_W = 6.2  # average width of an 11px sans-serif character, for label backgrounds

Point = tuple[float, float]
# an edge's drawing: its points, whether they are one Bezier curve, where its label sits
Geometry = tuple[list[Point], bool, Point | None]
# a lane's label: x, y, colour, text
LaneLabel = tuple[float, float, str, str]

_OUT_SIDE = {"next": "right", "long": "right", "same": "vert", "back": "bottom"}
_IN_SIDE = {"next": "left", "long": "left", "same": "vert", "back": "bottom"}


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _bezier(p0: Point, p1: Point, p2: Point, p3: Point, t: float) -> Point:
    u = 1 - t
    return (
        u**3 * p0[0] + 3 * u * u * t * p1[0] + 3 * u * t * t * p2[0] + t**3 * p3[0],
        u**3 * p0[1] + 3 * u * u * t * p1[1] + 3 * u * t * t * p2[1] + t**3 * p3[1],
    )


def _path(points: list[Point], curve: bool = True) -> str:
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


def _edge_colour(t: TransitionDef, added_colour: dict[str, str]) -> str:
    return added_colour.get(t.added_by, "#444") if t.added_by else "#444"


def _edge_label(t: TransitionDef) -> str:
    return t.event + (f" +{t.added_by}" if t.added_by else "")


@dataclass
class _Layout:
    """Where every state box sits and which way every edge runs."""

    groups: list[tuple[str, list[StateDef]]]
    edges: list[TransitionDef]
    pos: dict[str, Point]  # state -> (x, y) of the box's top-left corner
    column: dict[str, int]
    kinds: dict[int, str]  # edge index -> next, long, same or back
    lane_y: dict[tuple[str, str], int]  # (dest, event) of a long edge -> its lane's y
    back_y: dict[int, int]  # edge index of a backward edge -> the y of its arc
    ends: dict[tuple[str, str], list[int]]  # (state, side) -> edges that end there, in order
    width: int
    height: int

    def spread(self, state: str, side: str, i: int) -> float:
        """Where edge ``i`` meets ``side`` of ``state``: a fraction, so parallel edges stay apart."""
        members = self.ends[(state, side)]
        return (members.index(i) + 1) / (len(members) + 1)

    def gap_members(self) -> dict[int, list[int]]:
        """Edges between neighbouring columns, by the column they leave."""
        members: dict[int, list[int]] = {}
        for i, t in enumerate(self.edges):
            if self.kinds[i] == "next":
                members.setdefault(self.column[t.source[0]], []).append(i)
        return members


def _edge_kinds(edges: list[TransitionDef], column: dict[str, int]) -> dict[int, str]:
    kinds: dict[int, str] = {}
    for i, t in enumerate(edges):
        step = column[str(t.dest)] - column[t.source[0]]
        kinds[i] = "next" if step == 1 else "long" if step > 1 else "same" if step == 0 else "back"
    return kinds


def _layout(protocol: ResolvedProtocol) -> _Layout:
    """Phases as columns, their states as rows; lanes for long edges, arcs for backward ones."""
    groups = phases(protocol)
    pos: dict[str, Point] = {}
    column: dict[str, int] = {}
    tallest = max(len(states) for _, states in groups)
    for ci, (_, states) in enumerate(groups):
        x = _MARGIN + ci * (_COL_W + _GAP_X) + (_COL_W - _BOX_W) / 2
        for ri, s in enumerate(states):
            pos[s.name] = (x, _TOP + 40 + ri * _ROW_H)
            column[s.name] = ci
    edges = state_changing(protocol)
    kinds = _edge_kinds(edges, column)
    lanes: list[tuple[str, str]] = []  # (dest, event) of long edges, in first-seen order
    for i, t in enumerate(edges):
        if kinds[i] == "long" and (str(t.dest), t.event) not in lanes:
            lanes.append((str(t.dest), t.event))
    backs = [i for i in range(len(edges)) if kinds[i] == "back"]
    clusters_bottom = _TOP + 40 + tallest * _ROW_H
    lanes_bottom = clusters_bottom + 24 + 22 * len(lanes)
    ends: dict[tuple[str, str], list[int]] = {}
    for i, t in enumerate(edges):
        ends.setdefault((t.source[0], _OUT_SIDE[kinds[i]]), []).append(i)
        ends.setdefault((str(t.dest), "in-" + _IN_SIDE[kinds[i]]), []).append(i)
    return _Layout(
        groups=groups,
        edges=edges,
        pos=pos,
        column=column,
        kinds=kinds,
        lane_y={key: clusters_bottom + 24 + 22 * k for k, key in enumerate(lanes)},
        back_y={i: lanes_bottom + 30 + 24 * k for k, i in enumerate(backs)},
        ends=ends,
        width=_MARGIN * 2 + len(groups) * _COL_W + (len(groups) - 1) * _GAP_X,
        height=lanes_bottom + 30 + 24 * len(backs) + 20,
    )


def _head(protocol: ResolvedProtocol, layout: _Layout, prov: Provenance,
          added_colour: dict[str, str]) -> list[str]:
    """The svg element, arrow markers (one per adaptation colour), background, title, legend."""
    width, height = layout.width, layout.height
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{_fmt(height)}" '
        f'viewBox="0 0 {width} {_fmt(height)}" font-family="Helvetica, Arial, sans-serif" font-size="11">',
        f"<title>{escape(diagram_title(protocol))}</title>",
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
               f"{escape(diagram_title(protocol))}</text>")
    if protocol.adaptations:
        legend = "; ".join(f"+{a}: {prov.who(a)}" for a in protocol.adaptations)
        out.append(f'<text x="{_MARGIN}" y="48" fill="#555">dashed = added by an adaptation. '
                   f"{escape(legend)}</text>")
    return out


def _draw_phases(out: list[str], layout: _Layout, phase_colour: dict[str, str]) -> None:
    for ci, (name, states) in enumerate(layout.groups):
        x = _MARGIN + ci * (_COL_W + _GAP_X)
        h = 40 + len(states) * _ROW_H
        title = f"{name} phase" if name != "end" else "end of the course"
        out.append(f'<g class="phase" data-phase="{escape(name)}">')
        out.append(f'<rect x="{x}" y="{_TOP}" width="{_COL_W}" height="{h}" rx="8" '
                   f'fill="{phase_colour[name]}" stroke="#999"/>')
        out.append(f'<text x="{_fmt(x + _COL_W / 2)}" y="{_TOP + 20}" text-anchor="middle" '
                   f'font-weight="bold">{escape(title)}</text>')
        out.append("</g>")


def _edge_geometry(layout: _Layout, i: int, t: TransitionDef) -> Geometry:
    """Edge ``i``'s points and label position (None for a long edge: its lane is labelled)."""
    src, dest = t.source[0], str(t.dest)
    (sx, sy), (dx, dy) = layout.pos[src], layout.pos[dest]
    kind = layout.kinds[i]
    if kind == "next":
        p0 = (sx + _BOX_W, sy + _BOX_H * layout.spread(src, "right", i))
        p3 = (dx, dy + _BOX_H * layout.spread(dest, "in-left", i))
        bend = (p3[0] - p0[0]) * 0.45
        points = [p0, (p0[0] + bend, p0[1]), (p3[0] - bend, p3[1]), p3]
        return points, True, _bezier(*points, 0.5)
    if kind == "long":
        lane = layout.lane_y[(dest, t.event)]
        p0 = (sx + _BOX_W, sy + _BOX_H * layout.spread(src, "right", i))
        p3 = (dx, dy + _BOX_H * layout.spread(dest, "in-left", i))
        points = [p0, (p0[0] + 25, p0[1]), (p0[0] + 25, lane), (p3[0] - 45, lane),
                  (p3[0] - 25, lane), (p3[0] - 25, p3[1]), p3]
        return points, False, None
    if kind == "same":
        down = sy < dy
        x0 = sx + _BOX_W * layout.spread(src, "vert", i)
        p0 = (x0, sy + _BOX_H if down else sy)
        p3 = (x0, dy if down else dy + _BOX_H)
        label_x = x0 + len(_edge_label(t)) * _CHAR_W / 2 + 8
        return [p0, p3], False, (label_x, (p0[1] + p3[1]) / 2)
    low = layout.back_y[i]
    p0 = (sx + _BOX_W * layout.spread(src, "bottom", i), sy + _BOX_H)
    p3 = (dx + _BOX_W * layout.spread(dest, "in-bottom", i), dy + _BOX_H)
    points = [p0, (p0[0], low), (p3[0], low), p3]
    return points, True, _bezier(*points, 0.5)


def _lane_labels(layout: _Layout, geometry: dict[int, Geometry],
                 added_colour: dict[str, str]) -> dict[tuple[str, str], LaneLabel]:
    """One label per lane, left of where the lane's first edge turns up into its destination."""
    labels: dict[tuple[str, str], LaneLabel] = {}
    for i, t in enumerate(layout.edges):
        if layout.kinds[i] != "long":
            continue
        p3 = geometry[i][0][-1]
        label = _edge_label(t)
        lane_x = p3[0] - 25 - len(label) * _CHAR_W / 2 - 12
        key = (str(t.dest), t.event)
        labels.setdefault(key, (lane_x, layout.lane_y[key], _edge_colour(t, added_colour), label))
    return labels


def _separate_labels(layout: _Layout, geometry: dict[int, Geometry]) -> None:
    """Move labels in one gap between columns down until they no longer overlap."""
    for members in layout.gap_members().values():
        placed = sorted(members, key=lambda k: (geometry[k][2] or (0, 0))[1])
        last_y = float("-inf")
        for k in placed:
            points, curve, at = geometry[k]
            assert at is not None
            y = max(at[1], last_y + 15)
            geometry[k] = (points, curve, (at[0], y))
            last_y = y


def _draw_edge(out: list[str], t: TransitionDef, geometry: Geometry, prov: Provenance,
               added_colour: dict[str, str]) -> None:
    src, dest = t.source[0], str(t.dest)
    colour = _edge_colour(t, added_colour)
    points, curve, label_at = geometry
    reqs = edge_requirements(t, prov)
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
        _label(out, label_at[0], label_at[1], _edge_label(t), colour)
    out.append("</g>")


def _draw_start(out: list[str], layout: _Layout, initial_state: str) -> None:
    """The dot and arrow pointing at the initial state."""
    ix, iy = layout.pos[initial_state]
    out.append(f'<circle cx="{_fmt(ix - 18)}" cy="{_fmt(iy + _BOX_H / 2)}" r="5" fill="#222"/>')
    out.append(f'<line x1="{_fmt(ix - 13)}" y1="{_fmt(iy + _BOX_H / 2)}" x2="{_fmt(ix)}" '
               f'y2="{_fmt(iy + _BOX_H / 2)}" stroke="#222" marker-end="url(#arrow)"/>')


def _draw_state(out: list[str], s: StateDef, phase: str, at: Point, prov: Provenance,
                added_colour: dict[str, str], events: list[str]) -> None:
    x, y = at
    colour = added_colour.get(s.added_by, "#333") if s.added_by else "#333"
    dash = ' stroke-dasharray="5 3"' if s.added_by else ""
    width_px = "2.5" if s.final else "1.2"
    data = f'data-state="{escape(s.name)}" data-phase="{escape(phase)}"' + (
        f' data-added-by="{escape(s.added_by)}"' if s.added_by else "")
    tip = f"{s.name} ({phase} phase)" + (f", added by {prov.who(s.added_by)}" if s.added_by else "")
    if s.description:
        tip += f": {s.description}"
    if events:  # the events that keep a course in this state
        tip += f"; events here: {', '.join(events)}"
        data += f' data-events="{escape(" ".join(events))}"'
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


def to_svg(protocol: ResolvedProtocol, registry: Registry | None = None) -> str:
    """A standalone SVG picture: phases as columns, edges labelled with events (see module doc)."""
    prov = Provenance.of(protocol, registry)
    phase_colour, added_colour = colours(protocol)
    layout = _layout(protocol)
    out = _head(protocol, layout, prov, added_colour)
    _draw_phases(out, layout, phase_colour)
    geometry = {i: _edge_geometry(layout, i, t) for i, t in enumerate(layout.edges)}
    lane_labels = _lane_labels(layout, geometry, added_colour)
    _separate_labels(layout, geometry)
    for i, t in enumerate(layout.edges):
        _draw_edge(out, t, geometry[i], prov, added_colour)
    for (dest, event), (x, y, colour, text) in lane_labels.items():
        out.append(f'<g class="lane" data-dest="{escape(dest)}" data-event="{escape(event)}">')
        _label(out, x, y, text, colour)
        out.append("</g>")
    _draw_start(out, layout, protocol.initial_state)
    staying = staying_events(protocol)[1]
    for name, states in layout.groups:
        for s in states:
            _draw_state(out, s, name, layout.pos[s.name], prov, added_colour,
                        staying.get(s.name, []))
    out.append("</svg>")
    return "\n".join(out) + "\n"
