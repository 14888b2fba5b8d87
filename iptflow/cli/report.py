"""``iptflow report``: fidelity and outcome report over a store (text, JSON or HTML)."""

from __future__ import annotations

import click

from iptflow.cli.course import open_store
from iptflow.cli.options import db_option, json_option, progress_option
from iptflow.cli.output import check_writable, echo, emit_json, progress, show_progress, write_output
from iptflow.errors import MissingExtra
from iptflow.research.html import render_html
from iptflow.research.plot import course_svg
from iptflow.research.report import build_report, render_text, stale_count
from iptflow.store.api import Store
from iptflow.store.errors import StoreReadOnly


@click.command()
@db_option(help="The store to report on.")
@json_option
@click.option("--html", "html_path", type=click.Path(dir_okay=False), default=None,
              help="Also write a self-contained HTML page with charts to this file.")
@click.option("--read-only", "read_only", is_flag=True, default=False,
              help="Open DB read-only (a replica): stale report rows are recomputed in memory, "
                   "not stored.")
@progress_option
def report(db_path: str, as_json: bool, html_path: str | None, read_only: bool,
           progress_choice: bool | None) -> None:
    """Courses by state, sessions, time in phase, deviations and outcomes of every course in DB.

    Simulated (synthetic) courses are labelled as such in every output. The report first
    stores the report rows of courses that changed since the last report (unless --read-only,
    or DB cannot be written: then they are recomputed in memory).
    """
    if html_path:
        check_writable(html_path)  # before the work: a typo in a directory costs nothing
    show = show_progress(progress_choice)
    store, stale = _open_for_report(db_path, read_only, count=show)
    with store:
        with progress(stale, "reporting", show) as bar:
            data = build_report(store, progress=bar.update)
        timeline = _example_timeline(store) if html_path else None
    if html_path:
        write_output(html_path, render_html(data, timeline))
    if as_json:
        emit_json(data, sort_keys=True)
    else:
        echo(render_text(data))
        if html_path:
            echo(f"wrote {html_path}")


def _open_for_report(db_path: str, read_only: bool, *, count: bool) -> tuple[Store, int]:
    """The store to report on and how many courses' report rows are stale (counted once: for
    the progress bar, and to decide whether to write; 0 when neither needs it).

    Opened read-only first, so a file that is not an iptflow store (or needs an upgrade) is
    refused untouched; reopened for writing only when rows are stale and ``--read-only`` was
    not given. A store that cannot be written (a read-only file or directory) is reported on
    as with ``--read-only``: stale rows recomputed in memory."""
    store = open_store(db_path, readonly=True)
    if read_only and not count:
        return store, 0
    try:
        stale = stale_count(store)
    except BaseException:
        store.close()
        raise
    if read_only or not stale:
        return store, stale
    store.close()
    try:
        return open_store(db_path), stale
    except StoreReadOnly:
        return open_store(db_path, readonly=True), stale


def _example_timeline(store: Store) -> str | None:
    """One course's timeline as inline SVG (iptflow.research.plot, the ``plot`` extra), if installed.

    The course shown is the first completed one (by id), else the first course.
    """
    rows = store.list(state="completed") or store.list()
    if not rows:
        return None
    course = store.get(rows[0].id)
    try:
        svg = course_svg(course)
    except MissingExtra:
        return None
    return svg[svg.index("<svg"):]  # drop the XML declaration and doctype for inline use
