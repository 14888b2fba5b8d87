"""The HTML fidelity and outcome report: one self-contained page with inline SVG charts.

No script, no stylesheet or font from the network, no external file: the page opens in a
browser offline. Every text from the store is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from iptflow.research.report import PHASE_ORDER

PALETTE = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666")
STATUS_COLOURS = {"remission": "#1b9e77", "response": "#66a61e", "partial_response": "#e6ab02",
                  "non_response": "#d95f02", "none": "#999999"}

CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 980px; color: #222; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
.banner { background: #fff3cd; border: 1px solid #e6ab02; padding: .6rem 1rem; font-weight: 600; }
table { border-collapse: collapse; } td, th { padding: .2rem .7rem; border-bottom: 1px solid #ddd; }
th { text-align: left; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
svg text { font-family: system-ui, sans-serif; font-size: 12px; fill: #222; }
"""


def _fmt(v: float) -> str:
    return f"{v:g}" if isinstance(v, (int, float)) else str(v)


def hbars(items: Sequence[tuple[str, float]], unit: str = "", colour: str = PALETTE[0]) -> str:
    """A horizontal bar chart."""
    if not items:
        return "<p>No data.</p>"
    top = max(v for _, v in items) or 1
    label_w, bar_w, row_h = 170, 520, 24
    height = row_h * len(items) + 10
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 90}" height="{height}" '
             'role="img">']
    for i, (label, value) in enumerate(items):
        y = 5 + i * row_h
        w = bar_w * value / top
        parts.append(f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end">{escape(label)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 8}" '
                     f'fill="{colour}"><title>{escape(label)}: {_fmt(value)}{unit}</title></rect>')
        parts.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 16}">{_fmt(value)}{escape(unit)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def histogram(dist: dict[str, int]) -> str:
    """Vertical bars, one per value (e.g. sessions held)."""
    if not dist:
        return "<p>No data.</p>"
    keys = sorted(dist, key=int)
    top = max(dist.values()) or 1
    bar, gap, h = 22, 6, 180
    width = 50 + len(keys) * (bar + gap)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{h + 40}" role="img">']
    for i, k in enumerate(keys):
        x = 40 + i * (bar + gap)
        bh = h * dist[k] / top
        parts.append(f'<rect x="{x}" y="{h - bh + 5:.1f}" width="{bar}" height="{bh:.1f}" '
                     f'fill="{PALETTE[2]}"><title>{escape(k)} sessions: {dist[k]} courses</title></rect>')
        parts.append(f'<text x="{x + bar / 2}" y="{h + 20}" text-anchor="middle">{escape(k)}</text>')
    parts.append(f'<text x="4" y="14">{top}</text><text x="4" y="{h + 5}">0</text></svg>')
    return "".join(parts)


def stacked(groups: dict[str, dict[str, int]]) -> str:
    """One 100% stacked bar per group (outcome status by protocol and adaptations)."""
    if not groups:
        return "<p>No data.</p>"
    statuses = sorted({s for c in groups.values() for s in c},
                      key=lambda s: list(STATUS_COLOURS).index(s) if s in STATUS_COLOURS else 99)
    label_w, bar_w, row_h = 230, 560, 28
    height = row_h * len(groups) + 40
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 20}" height="{height}" '
             'role="img">']
    for i, (group, counts) in enumerate(groups.items()):
        y = 5 + i * row_h
        total = sum(counts.values()) or 1
        x = float(label_w)
        parts.append(f'<text x="{label_w - 8}" y="{y + 17}" text-anchor="end">{escape(group)}</text>')
        for s in statuses:
            w = bar_w * counts.get(s, 0) / total
            if w <= 0:
                continue
            pct = 100 * counts.get(s, 0) / total
            parts.append(f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{row_h - 8}" '
                         f'fill="{_colour(s, statuses)}"><title>{escape(group)}: {escape(s)} '
                         f"{counts.get(s, 0)} ({pct:.1f}%)</title></rect>")
            x += w
    parts.append(_legend(statuses, 5 + len(groups) * row_h + 8, label_w))
    parts.append("</svg>")
    return "".join(parts)


def _colour(status: str, order: Sequence[str]) -> str:
    return STATUS_COLOURS.get(status, PALETTE[order.index(status) % len(PALETTE)])


def _legend(statuses: Sequence[str], y: float, x0: float) -> str:
    parts, x = [], x0
    for s in statuses:
        parts.append(f'<rect x="{x}" y="{y}" width="12" height="12" fill="{_colour(s, statuses)}"/>'
                     f'<text x="{x + 16}" y="{y + 11}">{escape(s)}</text>')
        x += 30 + 7 * len(s)
    return "".join(parts)


def trajectories(data: dict[str, dict[str, float]]) -> str:
    """Mean score (percent of baseline) at the end of each phase, one line per outcome status."""
    phases: list[str] = []
    for by_phase in data.values():
        for p in by_phase:
            if p not in phases:
                phases.append(p)
    if not phases:
        return "<p>No measures.</p>"
    phases.sort(key=lambda p: PHASE_ORDER.index(p) if p in PHASE_ORDER else len(PHASE_ORDER))
    statuses = list(data)
    w, h, left, top = 640, 260, 50, 15
    step = w / max(1, len(phases) - 1)
    ymax = max(120.0, max(v for by in data.values() for v in by.values()))

    def y(v: float) -> float:
        return top + h - h * v / ymax

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + w + 60}" height="{top + h + 60}" '
             'role="img">']
    for v in range(0, int(ymax) + 1, 20):
        parts.append(f'<line x1="{left}" x2="{left + w}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#eee"/>'
                     f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v}%</text>')
    for i, p in enumerate(phases):
        parts.append(f'<text x="{left + i * step:.1f}" y="{top + h + 18}" text-anchor="middle">'
                     f"{escape(p)}</text>")
    for s in statuses:
        points = [(left + phases.index(p) * step, y(v)) for p, v in data[s].items()]
        points.sort()
        colour = _colour(s, statuses)
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2.5"/>')
        for (px, py), (p, v) in zip(points, sorted(data[s].items(),
                                                   key=lambda kv: phases.index(kv[0])), strict=True):
            parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3.5" fill="{colour}">'
                         f"<title>{escape(s)}, end of {escape(p)}: {v}% of baseline</title></circle>")
    parts.append(_legend(statuses, top + h + 34, left))
    parts.append("</svg>")
    return "".join(parts)


def render_html(report: dict[str, Any], timeline_svg: str | None = None) -> str:
    """The whole page."""
    data = report["data"]
    banner = ""
    if data["label"] != "real":
        runs = "; ".join(f"run {r['run']}: {r['n']} courses of "
                         f"{'+'.join([r['protocol'], *r['adaptations']])}, seed {r['seed']}"
                         for r in data["simulation_runs"])
        banner = (f'<p class="banner">{escape(data["label"].upper())} DATA: '
                  f"{data['synthetic_courses']} of {report['courses']} courses are simulated"
                  f"{' (' + escape(runs) + ')' if runs else ''}. Not real patients.</p>")
    s = report["sessions"]
    dev_rows = "".join(f'<tr><td>{escape(k)}</td><td class="n">{v}</td></tr>'
                       for k, v in report["deviations_per_100"].items()) or "<tr><td>none</td></tr>"
    phase_items = [(p, d["mean"]) for p, d in report["phase_days"].items()]
    sections = [
        f"<h1>iptflow fidelity and outcome report</h1>{banner}",
        f"<p>{report['courses']} courses; sessions held: mean {s['mean']}, median {s['median']}.</p>",
        "<h2>Courses by state</h2>" + hbars(list(report["states"].items())),
        "<h2>Outcome status by protocol and adaptations</h2>" + stacked(report["outcomes"]),
        "<h2>Symptom trajectories by phase</h2><p>Mean latest score of the baseline instrument at "
        "the end of each phase, as percent of baseline, by outcome status.</p>"
        + trajectories(report["trajectories"]),
        "<h2>Sessions held per course</h2>" + histogram(s["distribution"]),
        "<h2>Days in each phase (mean)</h2>" + hbars(phase_items, " d", PALETTE[1]),
        f"<h2>Deviations per 100 courses</h2><table><tr><th>code</th><th>per 100</th></tr>{dev_rows}</table>",
    ]
    if timeline_svg:
        sections.append(f"<h2>One course's timeline</h2><p>The first completed course.</p>{timeline_svg}")
    title = "iptflow report" + (f" ({data['label']} data)" if data["label"] != "real" else "")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{CSS}</style></head><body>{''.join(sections)}</body></html>\n")
