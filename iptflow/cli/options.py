"""Options shared by several commands."""

from __future__ import annotations

import click

from iptflow.engine.registry import Registry, default_registry

protocols_dir_option = click.option(
    "--protocols-dir",
    "protocols_dirs",
    multiple=True,
    type=click.Path(file_okay=False),
    help="A directory of protocol and variant files to search (repeatable; "
    "IPTFLOW_PROTOCOLS_PATH adds more).",
)

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def registry_for(protocols_dirs: tuple[str, ...]) -> Registry:
    """The default registry, or one that also searches the given directories."""
    if not protocols_dirs:
        return default_registry()
    return Registry(protocol_dirs=protocols_dirs)
