"""``iptflow verify``: check the store's hash chains and replay every course."""

from __future__ import annotations

import json

import click

from iptflow.cli.course import db_option, open_store
from iptflow.cli.options import json_option


@click.command()
@db_option
@json_option
def verify(db_path: str, as_json: bool) -> None:
    """Check every stored course: hash chain, replay on its stored protocol, derived row.

    Names the first broken event of each course. Exit status: 0 all good, 1 problems found,
    2 the database cannot be opened.
    """
    with open_store(db_path, create=False) as store:
        report = store.verify()
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        for problem in report.problems:
            click.echo(f"BROKEN {problem}")
        click.echo(
            f"{'ok' if report.ok else 'FAILED'}: {report.courses} courses, {report.events} events, "
            f"{report.protocols} protocols checked in {db_path}"
            + (f"; {len(report.problems)} problem(s)" if report.problems else "")
        )
    raise SystemExit(0 if report.ok else 1)
