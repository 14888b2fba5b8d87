"""``iptflow verify``: check the store's hash chains and replay every course."""

from __future__ import annotations

import click

from iptflow.cli.course import db_option, open_store
from iptflow.cli.options import json_option
from iptflow.cli.output import echo, emit_json
from iptflow.store.errors import DamagedStore
from iptflow.store.rows import Problem, VerifyReport


@click.command()
@db_option
@json_option
def verify(db_path: str, as_json: bool) -> None:
    """Check every stored course: hash chain, replay on its stored protocol, derived row.

    Names the first broken event of each course; a damaged file is a problem too. Exit
    status: 0 all good, 1 problems found, 2 the database cannot be opened.
    """
    try:
        with open_store(db_path, readonly=True) as store:
            report = store.verify()
    except DamagedStore as exc:  # too damaged to open: still a finding, not an error
        report = VerifyReport(problems=[Problem("damaged", exc.message)])
    if as_json:
        emit_json(report.to_dict())
    else:
        for problem in report.problems:
            echo(f"BROKEN {problem}")
        echo(
            f"{'ok' if report.ok else 'FAILED'}: {report.courses} courses, {report.events} events, "
            f"{report.protocols} protocols checked in {db_path}"
            + (f"; {len(report.problems)} problem(s)" if report.problems else "")
        )
    raise SystemExit(0 if report.ok else 1)
