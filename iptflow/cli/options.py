"""Options shared by several commands: ``--db``, ``--json``, ``--protocols-dir``, ``--progress``.

Each is defined once here so that every command spells, defaults and documents it the same
way (docs/cli.md).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from iptflow.engine.registry import Registry, default_registry
from iptflow.errors import IptflowError

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_DB = "iptflow.db"
"""The database of every command that takes ``--db``, unless ``--db`` or ``$IPTFLOW_DB`` names one."""

DB_ENV = "IPTFLOW_DB"

DB_TIMEOUT_ENV = "IPTFLOW_DB_TIMEOUT"
"""Seconds a command waits for another writer's lock on the database (default 30)."""


def db_timeout() -> float:
    """``$IPTFLOW_DB_TIMEOUT`` as seconds (default 30); a value that is not a number >= 0 is a
    one-line error."""
    text = os.environ.get(DB_TIMEOUT_ENV, "").strip()
    if not text:
        return 30.0
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise IptflowError(f"${DB_TIMEOUT_ENV} must be a number of seconds >= 0, got {text!r}")
    return value


def db_option(
    func: F | None = None,
    *,
    help: str = "The store: a SQLite file, sqlite:///PATH or a postgresql://USER@HOST/DB URL.",
) -> Any:
    """``--db PATH|URL`` (default ``./iptflow.db``, or ``$IPTFLOW_DB``): the store's SQLite file
    or a ``sqlite:///`` or ``postgresql://`` URL (``Store.open`` takes each).

    Use as ``@db_option`` or, with a command's own help text, ``@db_option(help="...")``.
    """

    def decorate(f: F) -> F:
        return click.option(
            "--db",
            "db_path",
            default=DEFAULT_DB,
            show_default=True,
            envvar=DB_ENV,
            show_envvar=True,
            type=click.Path(dir_okay=False),  # a URL is no directory: it passes as it is
            metavar="PATH|URL",
            help=help,
        )(f)

    return decorate(func) if func is not None else decorate


json_option = click.option(
    "--json", "as_json", is_flag=True,
    help="Print JSON: one object on one line (docs/cli.md gives its keys).",
)


def _existing_dirs(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    del ctx, param
    for directory in value:
        path = Path(directory)
        if not path.exists():
            raise IptflowError(f"--protocols-dir {directory}: no such directory")
        if not path.is_dir():
            raise IptflowError(f"--protocols-dir {directory}: not a directory")
    return value


protocols_dir_option = click.option(
    "--protocols-dir",
    "protocols_dirs",
    multiple=True,
    type=click.Path(file_okay=False),
    callback=_existing_dirs,
    help="A directory of protocol and variant files to search (repeatable; "
    "IPTFLOW_PROTOCOLS_PATH adds more). It must exist.",
)

progress_option = click.option(
    "--progress/--no-progress",
    "progress_choice",
    default=None,
    help="Draw a progress bar on stderr (default: only when stderr is a terminal).",
)


def registry_for(protocols_dirs: tuple[str, ...]) -> Registry:
    """The default registry, or one that also searches the given directories."""
    if not protocols_dirs:
        return default_registry()
    return Registry(protocol_dirs=protocols_dirs)
