"""``iptflow check``: validate protocol, adaptation and variant files."""

from __future__ import annotations

import json

import click

from ..check import KINDS, check_files
from . import cli
from .options import json_option, protocols_dir_option, registry_for


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--kind", type=click.Choice(KINDS), default=None,
              help="What the files are (default: told from their keys).")
@click.option("--base", default="ipt-depression", show_default=True,
              help="The protocol an adaptation file is composed with.")
@json_option
@protocols_dir_option
def check(
    files: tuple[str, ...], kind: str | None, base: str, as_json: bool,
    protocols_dirs: tuple[str, ...],
) -> None:
    """Validate protocol, adaptation or variant files and report every problem.

    Each problem is printed on its own line as FILE:LINE: FIELD: MESSAGE. Beyond the file
    format, references are resolved (guards and their parameters, states, requirements,
    events, the base protocol and adaptations of a variant) and the file is composed and
    compiled as a course would use it. Exit status: 0 when every file is valid, 2 otherwise.
    """
    results = check_files(files, registry_for(protocols_dirs), kind=kind, base=base)
    for result in results:
        if as_json:
            click.echo(json.dumps(result.to_dict(), ensure_ascii=False))
        elif result.ok:
            assert result.resolved is not None
            click.echo(f"{result.file}: ok ({result.kind} {result.id}, "
                       f"{result.resolved.fingerprint[:19]}...)")
        else:
            for problem in result.problems:
                click.echo(str(problem))
    raise SystemExit(0 if all(r.ok for r in results) else 2)
