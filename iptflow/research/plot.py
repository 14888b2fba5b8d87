"""A course's timeline as a picture (optional extra: ``pip install 'iptflow[plot]'``).

One panel per instrument (symptom scores over time, baseline marked), phase bands behind
every panel, and marks for sessions held (grey lines), sessions missed (red crosses),
reviews (shaded from the event that opened them to the one that closed them, or to the
end) and deviations (orange diamonds with their code). Drawn with matplotlib's object API
(no pyplot, no display): :func:`course_svg` returns SVG text (deterministic: fixed hash salt,
no date) for HTML reports; :func:`write_plot` writes ``.svg`` or ``.png``.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

from iptflow.engine.timeline import Step, phase_of, steps
from iptflow.errors import IptflowError, MissingExtra
from iptflow.interop.diagram import PHASE_COLOURS, phases

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from iptflow.engine.course import Course

FORMATS = ("svg", "png")
REVIEW_COLOURS = ("#d62728", "#9467bd", "#8c564b", "#e377c2")

Point = tuple[datetime, float, bool]  # when, score, whether it is the baseline


def _matplotlib() -> SimpleNamespace:
    """The matplotlib names used here.

    A lazy import of the optional extra ``iptflow[plot]``: this module imports without it, and
    drawing without it raises MissingExtra (exit status 2 on the command line).
    """
    try:
        import matplotlib
        from matplotlib.dates import (
            AutoDateLocator,
            ConciseDateFormatter,
            DateFormatter,
            date2num,
            num2date,
        )
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch
        from matplotlib.ticker import FixedLocator
    except ImportError as exc:  # pragma: no cover - exercised without the extra installed
        raise MissingExtra("course plots", "plot", "matplotlib") from exc
    return SimpleNamespace(rc_context=matplotlib.rc_context, AutoDateLocator=AutoDateLocator,
                           ConciseDateFormatter=ConciseDateFormatter, Figure=Figure, Line2D=Line2D,
                           Patch=Patch, DateFormatter=DateFormatter, date2num=date2num,
                           num2date=num2date, FixedLocator=FixedLocator)


@dataclass
class _Timeline:
    """What the picture shows of a course, read from its history."""

    start: datetime
    end: datetime
    pad: timedelta
    instruments: dict[str, list[Point]]
    bands: list[tuple[datetime, datetime, str]]  # phase bands: from, to, phase
    reviews: list[tuple[str, datetime, datetime]]  # review, opened, closed (or the end)
    review_colour: dict[str, str]
    held: list[datetime]
    missed: list[datetime]
    deviations: list[tuple[datetime, str]]


def _points(course: Course, history: list[Step]) -> dict[str, list[Point]]:
    """Every measure's score by instrument, the baseline marked."""
    instruments: dict[str, list[Point]] = {}
    baseline = course.facts.baseline
    for s in history:
        if s.type == "measure_recorded":
            is_baseline = baseline is not None and s.seq == baseline.seq
            instruments.setdefault(s.event["instrument"], []).append((s.at, s.event["score"], is_baseline))
    return instruments


def _bands(course: Course, history: list[Step], start: datetime,
           end: datetime) -> list[tuple[datetime, datetime, str]]:
    """The phases the course went through, each from when it entered to when it left."""
    bands: list[tuple[datetime, datetime, str]] = []
    band_start, band_phase = start, phase_of(course, history[0].state)
    for s in history[1:]:
        phase = phase_of(course, s.state)
        if phase != band_phase:
            bands.append((band_start, s.at, band_phase))
            band_start, band_phase = s.at, phase
    bands.append((band_start, end, band_phase))
    return bands


def _reviews(history: list[Step], end: datetime) -> list[tuple[str, datetime, datetime]]:
    """Each review from the event that opened it to the one that closed it (or to the end)."""
    reviews: list[tuple[str, datetime, datetime]] = []
    open_at: dict[str, datetime] = {}
    for s in history:
        for review in s.opened_reviews:
            open_at[review] = s.at
        for review in s.closed_reviews:
            if review in open_at:
                reviews.append((review, open_at.pop(review), s.at))
    reviews += [(review, at, end) for review, at in sorted(open_at.items())]
    return reviews


def shifted(at: datetime, delta: timedelta) -> datetime:
    """``at + delta``, held at the first or last moment of the calendar (years 1 and 9999)
    instead of overflowing."""
    try:
        return at + delta
    except OverflowError:
        return (datetime.max if delta > timedelta(0) else datetime.min).replace(tzinfo=at.tzinfo)


def course_clock(opened: datetime) -> Callable[[datetime], datetime]:
    """Times as the picture's axis shows them: naive wall-clock times in the offset of the
    course's ``course_opened`` event, found by subtracting instants (never by converting to
    UTC, which leaves the calendar for 0001-01-01T00:00+15:00 or 9999-12-31T20:00-15:00)."""
    local = opened.replace(tzinfo=None)
    return lambda at: shifted(local, at - opened)


def _timeline(course: Course) -> _Timeline:
    recorded = steps(course)
    clock = course_clock(recorded[0].at)
    history = [replace(s, at=clock(s.at)) for s in recorded]
    start = history[0].at
    end = history[-1].at
    if end - start < timedelta(days=1):
        end = shifted(start, timedelta(days=1))
        start = shifted(end, -timedelta(days=1))  # at the end of the calendar: the day before
    reviews = _reviews(history, end)
    review_names = sorted({r for r, _, _ in reviews})
    return _Timeline(
        start=start,
        end=end,
        pad=(end - start) * 0.02,
        instruments=_points(course, history),
        bands=_bands(course, history, start, end),
        reviews=reviews,
        review_colour={r: REVIEW_COLOURS[i % len(REVIEW_COLOURS)] for i, r in enumerate(review_names)},
        held=[s.at for s in history if s.type == "session_held"],
        missed=[s.at for s in history if s.type == "session_missed"],
        deviations=[(clock(d.at), d.code) for d in course.deviations],
    )


def _draw_scores(ax: Axes, course: Course, name: str, points: list[Point]) -> None:
    """One instrument's scores (the baseline ringed), or a note that none were recorded."""
    if points:
        xs = [p[0] for p in points]
        ys = [p[1] for p in points]
        ax.plot(xs, ys, marker="o", color="#1f4e79", lw=1.8, zorder=4)
        for at, score, is_baseline in points:
            if is_baseline:
                ax.plot([at], [score], marker="o", ms=11, mfc="none", mec="#1f4e79", zorder=5)
        inst = course.protocol.instruments.get(name)
        top = inst.max if inst is not None and inst.max is not None else max(ys) * 1.2 or 1
        ax.set_ylim(0, top)
        ax.set_ylabel(name)
    else:
        ax.set_ylim(0, 1)
        ax.set_yticks([])
        ax.text(0.5, 0.5, "no measures recorded", transform=ax.transAxes, ha="center", va="center",
                color="#666666")


def _draw_panel(ax: Axes, course: Course, tl: _Timeline, name: str, colour_of: dict[str, str]) -> None:
    """One instrument's panel: phase bands, reviews, sessions, scores, missed sessions, deviations."""
    for b0, b1, phase in tl.bands:
        ax.axvspan(b0, b1, color=colour_of.get(phase, "#eeeeee"), alpha=0.9, lw=0, zorder=0)
    for review, r0, r1 in tl.reviews:
        ax.axvspan(r0, max(r1, shifted(r0, tl.pad / 4)), facecolor="none", edgecolor=tl.review_colour[review],
                   hatch="//", lw=0, zorder=1, alpha=0.6)
    for at in tl.held:
        ax.axvline(at, color="#888888", lw=0.7, zorder=2)
    _draw_scores(ax, course, name, tl.instruments.get(name, []))
    lo, hi = ax.get_ylim()
    if tl.missed:
        ax.plot(tl.missed, [lo + (hi - lo) * 0.04] * len(tl.missed), "x", color="#d62728", ms=8, mew=2,
                zorder=6, clip_on=False)
    if tl.deviations:
        ax.plot([d[0] for d in tl.deviations], [hi - (hi - lo) * 0.05] * len(tl.deviations), "D",
                color="#ff7f0e", ms=7, zorder=6, clip_on=False)
    ax.set_xlim(shifted(tl.start, -tl.pad), shifted(tl.end, tl.pad))
    ax.grid(axis="y", color="white", lw=0.8)


def _annotate_top(top_ax: Axes, tl: _Timeline) -> None:
    """Deviation codes and phase names on the top panel."""
    lo, hi = top_ax.get_ylim()
    for at, code in tl.deviations:
        top_ax.annotate(code, (at, hi - (hi - lo) * 0.05), xytext=(4, -12), textcoords="offset points",
                        fontsize=7, color="#b35806", rotation=0)
    for b0, b1, phase in tl.bands:
        mid = b0 + (b1 - b0) / 2
        top_ax.annotate(phase, (mid, 1.0), xycoords=("data", "axes fraction"), xytext=(0, 3),
                        textcoords="offset points", ha="center", va="bottom", fontsize=7, color="#333333")


def _date_axis(ax: Axes, tl: _Timeline) -> None:
    """Dates on the time axis: matplotlib's own ticks, or, where those would step past the
    calendar (a course ending in December 9999), six evenly spaced dates inside it."""
    mpl = _matplotlib()
    locator = mpl.AutoDateLocator()
    lo, hi = shifted(tl.start, -tl.pad), shifted(tl.end, tl.pad)
    try:
        mpl.num2date(locator.tick_values(lo, hi))  # raises for a tick outside years 1-9999
    except (ValueError, OverflowError):
        first, last = mpl.date2num(lo), mpl.date2num(hi)
        ax.xaxis.set_major_locator(mpl.FixedLocator(
            [first + (last - first) * (i + 0.5) / 6 for i in range(6)]))
        ax.xaxis.set_major_formatter(mpl.DateFormatter("%Y-%m-%d"))
        return
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mpl.ConciseDateFormatter(locator))


def _legend(fig: Figure, tl: _Timeline) -> None:
    mpl = _matplotlib()
    line2d, patch = mpl.Line2D, mpl.Patch
    handles = [line2d([], [], color="#888888", lw=0.7, label=f"session held ({len(tl.held)})"),
               line2d([], [], color="#d62728", marker="x", lw=0, mew=2,
                      label=f"session missed ({len(tl.missed)})"),
               line2d([], [], color="#ff7f0e", marker="D", lw=0, label=f"deviation ({len(tl.deviations)})")]
    handles += [patch(facecolor="none", edgecolor=tl.review_colour[r], hatch="//", label=f"{r} review")
                for r in sorted(tl.review_colour)]
    handles += [line2d([], [], color="#1f4e79", marker="o", mfc="none", ms=11, lw=0, label="baseline")]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6), fontsize=8, frameon=False)


def course_figure(course: Course) -> Figure:
    """The timeline picture of ``course`` as a matplotlib Figure."""
    mpl = _matplotlib()
    tl = _timeline(course)
    names = list(tl.instruments) or [""]
    fig = mpl.Figure(figsize=(10, 1.2 + 2.2 * len(names)), dpi=100)
    axes = fig.subplots(len(names), 1, sharex=True, squeeze=False)[:, 0]
    phase_names = [name for name, _ in phases(course.protocol)]
    colour_of = {name: PHASE_COLOURS[i % len(PHASE_COLOURS)] for i, name in enumerate(phase_names)}
    for ax, name in zip(axes, names, strict=True):
        _draw_panel(ax, course, tl, name, colour_of)
    _annotate_top(axes[0], tl)
    _date_axis(axes[-1], tl)
    _legend(fig, tl)
    outcome = course.outcome
    summary = f"course {course.course_id}: {course.state}, {course.sessions_held} sessions"
    if outcome is not None:
        summary += f", {outcome.instrument} {outcome.baseline} -> {outcome.latest} ({outcome.status})"
    fig.suptitle(summary, fontsize=11)
    fig.subplots_adjust(left=0.08, right=0.98, top=1 - 0.55 / fig.get_figheight(),
                        bottom=0.75 / fig.get_figheight(), hspace=0.25)
    return fig


def _render(course: Course, fmt: str) -> bytes:
    fig = course_figure(course)
    buffer = io.BytesIO()
    metadata = {"Date": None} if fmt == "svg" else {"Software": None}
    with _matplotlib().rc_context({"svg.hashsalt": f"iptflow:{course.course_id}", "svg.fonttype": "path"}):
        fig.savefig(buffer, format=fmt, metadata=metadata)
    return buffer.getvalue()


def course_svg(course: Course) -> str:
    """The timeline picture as SVG text (the same course gives the same text)."""
    return _render(course, "svg").decode("utf-8")


def course_png(course: Course) -> bytes:
    return _render(course, "png")


def write_plot(course: Course, path: str | Path) -> Path:
    """Write the picture to ``path``; its suffix (``.svg`` or ``.png``) chooses the format."""
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        got = repr(path.suffix) if path.suffix else "no suffix"
        raise IptflowError(f"{path}: the picture must be a .svg or .png file, not {got}")
    try:
        path.write_bytes(_render(course, fmt))
    except OSError as exc:
        raise IptflowError(f"{path}: cannot write: {exc.strerror or exc}") from None
    return path
