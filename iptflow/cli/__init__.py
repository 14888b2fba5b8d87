"""The iptflow command line."""
from __future__ import annotations

import click


@click.group()
@click.version_option(package_name="iptflow", prog_name="iptflow")
def cli() -> None:
    """Run courses of Interpersonal Psychotherapy as finite-state machines."""


def main() -> None:
    cli()
