"""``iptflow export fhir``: a stored course as a FHIR R4 Bundle (needs ``iptflow[fhir]``)."""

from __future__ import annotations

from pathlib import Path

import click

from iptflow.cli.course import db_option, open_store
from iptflow.interop.fhir import bundle_json  # raises MissingExtra (exit 2) without iptflow[fhir]


@click.group()
def export() -> None:
    """Export stored courses in other formats."""


@export.command("fhir")
@db_option
@click.argument("course_id")
@click.option("--out", "out", type=click.Path(dir_okay=False),
              help="Write the bundle here (default: stdout).")
def fhir(db_path: str, course_id: str, out: str | None) -> None:
    """Export COURSE_ID as a FHIR R4 Bundle (JSON); see docs/fhir.md."""
    with open_store(db_path, readonly=True) as store:
        course = store.get(course_id)
    text = bundle_json(course) + "\n"
    if out is None:
        click.echo(text, nl=False)
        return
    Path(out).write_text(text, encoding="utf-8")
    click.echo(f"wrote {out}", err=True)
