"""``iptflow export fhir``: a stored course as a FHIR R4 Bundle (needs ``iptflow[fhir]``)."""

from __future__ import annotations

import json

import click

from iptflow.cli.course import db_option, open_store
from iptflow.cli.options import json_option
from iptflow.cli.output import check_writable, echo, emit_json, write_output
from iptflow.interop.fhir import bundle_json  # raises MissingExtra (exit 2) without iptflow[fhir]


@click.group()
def export() -> None:
    """Export stored courses in other formats."""


@export.command("fhir")
@db_option
@click.argument("course_id")
@click.option("--out", "out", type=click.Path(dir_okay=False),
              help="Write the bundle here (default: stdout).")
@json_option
def fhir(db_path: str, course_id: str, out: str | None, as_json: bool) -> None:
    """Export COURSE_ID as a FHIR R4 Bundle (JSON); see docs/fhir.md.

    The bundle is the output: with --json (which needs --out) stdout gets one object about
    the run instead: course_id, file, entries (the bundle's resources).
    """
    if as_json and out is None:
        raise click.UsageError("--json needs --out (without --out the bundle itself is printed)")
    if out is not None:
        check_writable(out)  # before any work: a path that cannot be written costs nothing
    with open_store(db_path, readonly=True) as store:
        course = store.get(course_id)
    text = bundle_json(course) + "\n"
    if out is None:
        echo(text, nl=False)
        return
    write_output(out, text)
    if as_json:
        emit_json({"course_id": course_id, "file": out, "entries": len(json.loads(text).get("entry", []))})
        return
    echo(f"wrote {out}", err=True)
