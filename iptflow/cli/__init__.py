"""The iptflow command line: a click group; each command (or group of commands) is defined in
its own module of this package and added here, in :data:`COMMANDS`.

User mistakes (unusable files, unknown protocols, bad arguments) are reported in one line on
stderr with exit status 2, never with a traceback. Every command prints through
``iptflow.cli.output`` and takes its shared options from ``iptflow.cli.options``; the
conventions (``--json``, ``--db``, exit status) are docs/cli.md.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from iptflow.cli import (
    check,
    course,
    demo,
    export,
    generate,
    migrate,
    plot,
    plugins,
    protocols,
    replay,
    report,
    serve,
    simulate,
    store,
    token,
    verify,
    worklist,
)
from iptflow.cli.output import echo, error
from iptflow.errors import IptflowError


class IptflowGroup(click.Group):
    """A group that turns iptflow's typed errors into one-line messages and exit status 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except IptflowError as exc:
            error(exc.message)
            ctx.exit(2)


@click.group(cls=IptflowGroup)
@click.version_option(package_name="iptflow", prog_name="iptflow")
def cli() -> None:
    """Run courses of Interpersonal Psychotherapy as finite-state machines."""


COMMANDS: tuple[click.Command, ...] = (
    check.check,
    course.course,
    demo.demo,
    export.export,
    generate.generate,
    migrate.migrate,
    plugins.plugins,
    protocols.protocols,
    protocols.schema,
    protocols.show,
    replay.replay,
    report.report,
    serve.serve,
    simulate.simulate,
    store.store,
    token.token,
    verify.verify,
    worklist.worklist,
)
"""Every command and group of ``iptflow`` (``iptflow --help`` lists them by name)."""

NOT_REPORTING: dict[str, str] = {
    "schema": "its output is a JSON Schema document (the file in docs/schemas/), already JSON; "
    "it reports nothing about a run",
    "serve": "it runs the HTTP service until stopped; its answers are JSON and its log lines "
    "are JSON already",
}
"""Commands without ``--json``, each with the reason (docs/cli.md; tests/test_cli_json.py checks
that every other command takes ``--json``)."""

STREAMS: frozenset[str] = frozenset(
    {"check", "replay", "course import", "course list", "course log"}
)
"""Commands whose ``--json`` output is JSON Lines (one object per file, course or event; replay
adds a summary object last when it was given several files); every other command prints one
JSON object."""

for _command in COMMANDS:
    cli.add_command(_command)
course.course.add_command(plot.plot)


def main() -> None:
    try:
        cli.main(prog_name="iptflow")
    except KeyboardInterrupt:  # pragma: no cover
        echo("iptflow: interrupted", err=True)
        sys.exit(130)
