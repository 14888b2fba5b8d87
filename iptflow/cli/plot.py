"""``iptflow course plot``: a stored course's timeline as an SVG or PNG picture (``iptflow[plot]``)."""

from __future__ import annotations

import click

from iptflow.cli.course import db_option, open_store
from iptflow.cli.options import json_option
from iptflow.cli.output import check_writable, echo, emit_json
from iptflow.research.plot import write_plot  # raises MissingExtra (exit 2) without iptflow[plot]


@click.command("plot")
@click.argument("course_id")
@db_option
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="The picture to write: FILE.svg or FILE.png.")
@json_option
def plot(course_id: str, db_path: str, out: str, as_json: bool) -> None:
    """Draw COURSE_ID's scores over time with phases, sessions, reviews and deviations.

    With --json: course_id, file, format (svg or png).
    """
    check_writable(out)  # before any work: a path that cannot be written costs nothing
    with open_store(db_path, readonly=True) as store:
        course = store.get(course_id)
    written = write_plot(course, out)
    if as_json:
        emit_json({"course_id": course_id, "file": out, "format": written.suffix.lower().lstrip(".")})
        return
    echo(f"wrote {out}", err=True)
