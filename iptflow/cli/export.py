"""``iptflow export``: a stored course as a FHIR R4 Bundle (needs ``iptflow[fhir]``), and the
store's analysis tables (``courses``, ``events``, ``measures``, ``deviations``) as CSV, Parquet
(needs ``iptflow[parquet]``) or JSON Lines (docs/export.md)."""

from __future__ import annotations

import json
import sys

import click

from iptflow.cli.course import db_option, open_store
from iptflow.cli.options import json_option, progress_option
from iptflow.cli.output import check_writable, echo, emit_json, progress, show_progress, write_output
from iptflow.interop.fhir import bundle_json  # raises MissingExtra (exit 2) without iptflow[fhir]
from iptflow.research.export import FORMATS, TABLES, write_table


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


def _table_command(table: str) -> click.Command:
    @db_option
    @click.option("--format", "fmt", type=click.Choice(FORMATS), default="csv", show_default=True,
                  help="csv, parquet (needs iptflow[parquet]) or jsonl (one JSON object a line).")
    @click.option("--out", "out", type=click.Path(dir_okay=False),
                  help="Write the table here, whole or not at all (default: stdout; parquet needs it).")
    @progress_option
    @json_option
    def command(db_path: str, fmt: str, out: str | None, progress_choice: bool | None,
                as_json: bool) -> None:
        if out is None and (as_json or fmt == "parquet"):
            raise click.UsageError(f"{'--json' if as_json else '--format parquet'} needs --out "
                                   "(without --out the table itself is printed)")
        if out is not None:
            check_writable(out)  # before any work
        with open_store(db_path, readonly=True) as store:
            if out is None:
                stream = sys.stdout
                write_table(store, table, fmt, stream)
                stream.flush()
                return
            total = store.count() if table == "courses" else 0
            with progress(total, f"exporting {table}", show_progress(progress_choice)) as bar:
                rows = write_table(store, table, fmt, out, progress=bar.update)
        if as_json:
            emit_json({"table": table, "format": fmt, "file": out, "rows": rows,
                       "columns": [c.name for c in TABLES[table]]})
            return
        echo(f"wrote {rows} rows of {table} to {out}", err=True)

    command.__doc__ = (
        f"Export the store's {table} table (docs/export.md lists its columns and types).\n\n"
        "The table is the output: with --json (which needs --out) stdout gets one object about "
        "the run instead: table, format, file, rows, columns."
    )
    return export.command(table)(command)


for _table in TABLES:
    _table_command(_table)
