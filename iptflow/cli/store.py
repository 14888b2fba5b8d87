"""``iptflow store ...``: whole stores. ``store copy --from URL --to URL`` copies every course
with its hash chain (and its pinned protocols, adaptation rows, migration records and the
simulation runs) into an empty store, then verifies the copy (docs/deploy.md).

A location is a SQLite file path, ``sqlite:///PATH`` or ``postgresql://USER@HOST:PORT/DB``.
Exit status: 0 copied and verified, 1 the copy does not verify, 2 a store cannot be used.
"""

from __future__ import annotations

import click

from iptflow.cli.options import db_timeout, json_option
from iptflow.cli.output import echo, emit_json
from iptflow.store.api import Store
from iptflow.store.copying import copy_store

__all__ = ["store"]


@click.group()
def store() -> None:
    """Whole stores: copy one to another (SQLite and PostgreSQL)."""


@store.command("copy")
@click.option("--from", "source", required=True, metavar="URL",
              help="The store to copy: a SQLite file, sqlite:///PATH or postgresql://... URL.")
@click.option("--to", "target", required=True, metavar="URL",
              help="An empty store to copy into (created if it is a new SQLite file; a "
                   "PostgreSQL database must exist).")
@json_option
def copy(source: str, target: str, as_json: bool) -> None:
    """Copy every course, with its hash chain, into an empty store and verify the copy.

    Rows are copied as stored (the same hashes), in one transaction of the target; then the
    target is verified and its chain heads compared with the source's.
    """
    timeout = db_timeout()
    with Store.open(source, readonly=True, timeout=timeout) as src, \
            Store.open(target, create=True, timeout=timeout) as dst:
        report = copy_store(src, dst)
    if as_json:
        emit_json(report.to_dict())
    else:
        for problem in report.problems:
            echo(f"BROKEN {problem}")
        echo(
            f"{'copied' if report.ok else 'FAILED'}: {report.courses} courses, {report.events} "
            f"events, {report.rows.get('protocols', 0)} protocols, "
            f"{report.rows.get('course_migrations', 0)} migration records, "
            f"{report.rows.get('simulation_runs', 0)} simulation runs from {report.source} to "
            f"{report.target}; " + ("the copy verifies" if report.ok
                                    else f"{len(report.problems)} problem(s) in the copy")
        )
    raise SystemExit(0 if report.ok else 1)
