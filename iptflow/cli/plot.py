"""``iptflow course plot``: a stored course's timeline as an SVG or PNG picture (``iptflow[plot]``)."""

from __future__ import annotations

import click

from iptflow.cli.course import db_option, open_store
from iptflow.research.plot import write_plot  # raises MissingExtra (exit 2) without iptflow[plot]


@click.command("plot")
@click.argument("course_id")
@db_option
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="The picture to write: FILE.svg or FILE.png.")
def plot(course_id: str, db_path: str, out: str) -> None:
    """Draw COURSE_ID's scores over time with phases, sessions, reviews and deviations."""
    with open_store(db_path, readonly=True) as store:
        course = store.get(course_id)
    write_plot(course, out)
    click.echo(f"wrote {out}", err=True)
