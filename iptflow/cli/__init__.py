"""The iptflow command line: a click group; each command group lives in its own module.

User mistakes (unusable files, unknown protocols, bad arguments) are reported in one line on
stderr with exit status 2, never with a traceback.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from iptflow.errors import IptflowError


class IptflowGroup(click.Group):
    """A group that turns iptflow's typed errors into one-line messages and exit status 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except IptflowError as exc:
            click.echo(f"iptflow: error: {exc.message}", err=True)
            ctx.exit(2)


@click.group(cls=IptflowGroup)
@click.version_option(package_name="iptflow", prog_name="iptflow")
def cli() -> None:
    """Run courses of Interpersonal Psychotherapy as finite-state machines."""


def _register_commands() -> None:
    """Import every module of this package: each adds its commands to ``cli``."""
    import importlib
    import pkgutil

    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name != "options":
            importlib.import_module(f"{__name__}.{info.name}")


_register_commands()


def main() -> None:
    try:
        cli.main(prog_name="iptflow")
    except KeyboardInterrupt:  # pragma: no cover
        click.echo("iptflow: interrupted", err=True)
        sys.exit(130)
