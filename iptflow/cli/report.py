"""``iptflow report``: fidelity and outcome report over a store (text, JSON or HTML)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from iptflow.cli.options import json_option
from iptflow.errors import MissingExtra
from iptflow.research.html import render_html
from iptflow.research.plot import course_svg
from iptflow.research.report import build_report, render_text
from iptflow.store.api import Store


@click.command()
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False),
              help="The store to report on.")
@json_option
@click.option("--html", "html_path", type=click.Path(dir_okay=False), default=None,
              help="Also write a self-contained HTML page with charts to this file.")
def report(db_path: str, as_json: bool, html_path: str | None) -> None:
    """Courses by state, sessions, time in phase, deviations and outcomes of every course in DB.

    Simulated (synthetic) courses are labelled as such in every output.
    """
    with Store.open(db_path, readonly=True) as store:
        data = build_report(store)
        timeline = _example_timeline(store) if html_path else None
    if html_path:
        Path(html_path).write_text(render_html(data, timeline), encoding="utf-8")
    if as_json:
        click.echo(json.dumps(data, sort_keys=True))
    else:
        click.echo(render_text(data))
        if html_path:
            click.echo(f"wrote {html_path}")


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
