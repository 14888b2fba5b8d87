"""``iptflow check``: validate protocol, adaptation and variant files."""

from __future__ import annotations

import click

from iptflow.cli.options import json_option, protocols_dir_option, registry_for
from iptflow.cli.output import echo, emit_json
from iptflow.research.check import KINDS, check_files
from iptflow.research.lint import lint


@click.command()
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
    compiled as a course would use it, then linted (docs/research.md: unreachable states,
    dead ends, requirements that cannot hold together...). Exit status: 0 when every file is
    valid and lint-clean, 1 when valid files have lint findings, 2 when a file is invalid.
    """
    registry = registry_for(protocols_dirs)
    results = check_files(files, registry, kind=kind, base=base)
    linted = 0
    for result in results:
        # lint (iptflow/research/lint.py) runs on what the check resolved: findings exit 1
        findings = lint(result.resolved, registry) if result.resolved is not None else []
        linted += len(findings)
        if as_json:
            emit_json({**result.to_dict(), "lint": [f.to_dict() for f in findings]})
        elif result.ok:
            assert result.resolved is not None
            echo(f"{result.file}: ok ({result.kind} {result.id}, "
                       f"{result.resolved.fingerprint[:19]}...)" + (
                           f", {len(findings)} lint finding(s)" if findings else ""))
            for finding in findings:
                echo(f"{result.file}: lint: {finding}")
        else:
            for problem in result.problems:
                echo(str(problem))
    raise SystemExit(2 if not all(r.ok for r in results) else 1 if linted else 0)
