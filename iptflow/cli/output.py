"""What the command line writes: text and JSON on stdout, errors on stderr, output files.

Every command prints through :func:`echo` (text) and :func:`emit_json` (its ``--json``
output), so that one rule holds everywhere (docs/cli.md):

* text a user gave (course ids, event fields, messages that quote them) may hold characters
  the terminal cannot encode, such as a lone surrogate (``"\\ud800"`` in a course file): they
  are written as backslash escapes (``\\ud800``), never a ``UnicodeEncodeError``;
* ``--json`` output is one JSON object on one line (UTF-8, keys in the data's order); a
  command that streams prints one such object per line (JSON Lines). An escaped lone
  surrogate is still valid JSON (``\\ud800`` is a JSON escape), so the output parses;
* an output file is checked before the work that fills it (:func:`check_writable`) and
  written whole or not at all (:func:`write_output`).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import click

from iptflow.errors import IptflowError


def printable(text: str, stream: IO[str] | None = None) -> str:
    """``text`` with every character the stream cannot encode written as a backslash escape."""
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        text.encode(encoding)
    except UnicodeEncodeError:
        return text.encode(encoding, errors="backslashreplace").decode(encoding)
    except LookupError:  # pragma: no cover - a stream with an encoding Python does not know
        return text.encode("ascii", errors="backslashreplace").decode("ascii")
    return text


def echo(text: str = "", *, err: bool = False, nl: bool = True) -> None:
    """Print ``text`` (stdout, or stderr with ``err``); what cannot be encoded is escaped."""
    click.echo(printable(text, sys.stderr if err else sys.stdout), err=err, nl=nl)


def error(message: str) -> None:
    """The one-line error on stderr: ``iptflow: error: MESSAGE``."""
    echo(f"iptflow: error: {' '.join(message.splitlines())}", err=True)


def warning(message: str) -> None:
    """A one-line warning on stderr: ``iptflow: warning: MESSAGE``."""
    echo(f"iptflow: warning: {' '.join(message.splitlines())}", err=True)


def json_text(data: Any, *, sort_keys: bool = False) -> str:
    """``data`` as the CLI prints JSON: one line, UTF-8 (not ``\\u`` escapes), strict (no NaN)."""
    return json.dumps(data, ensure_ascii=False, sort_keys=sort_keys, allow_nan=False)


def emit_json(data: Any, *, sort_keys: bool = False) -> None:
    """Print one JSON object on one line on stdout (a ``--json`` result, or one line of a stream)."""
    echo(json_text(data, sort_keys=sort_keys))


def check_writable(path: str | Path) -> Path:
    """Fail (exit 2, one line) unless a file can be written at ``path``; nothing is created.

    Called before the work whose result goes there, so that a typo in a directory name does
    not cost a whole report. The directory must exist; an existing ``path`` must be a
    writable file.
    """
    target = Path(path)
    parent = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise IptflowError(f"cannot write {path}: it is a directory")
    if not parent.is_dir():
        raise IptflowError(f"cannot write {path}: no directory {parent}")
    if target.exists() and not os.access(target, os.W_OK):
        raise IptflowError(f"cannot write {path}: permission denied")
    if not target.exists() and not os.access(parent, os.W_OK | os.X_OK):
        raise IptflowError(f"cannot write {path}: directory {parent} is not writable")
    return target


def write_output(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` whole: into a temporary file beside it, then renamed over it.

    On any failure (a full disk, a directory that vanished) nothing is left at ``path`` but
    what was there before, and the error is an :class:`IptflowError` naming the file.
    """
    target = check_writable(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        os.replace(tmp, target)
        tmp = None
    except OSError as exc:
        raise IptflowError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
    return target


class _NoBar:
    """What :func:`progress` gives when no bar is shown: ``update`` does nothing."""

    def update(self, n_steps: int) -> None:
        del n_steps


def show_progress(choice: bool | None, *, stdout_too: bool = False) -> bool:
    """Whether to draw a progress bar: ``--progress``/``--no-progress``, else only when stderr is
    a terminal (and, for commands that print as they go, stdout is not the same screen)."""
    if choice is not None:
        return choice
    if not sys.stderr.isatty():
        return False
    return not (stdout_too and sys.stdout.isatty())


@contextmanager
def progress(length: int, label: str, show: bool) -> Iterator[Any]:
    """A click progress bar on stderr of ``length`` steps (``bar.update(n)``), or a no-op."""
    if not show or length <= 0:
        yield _NoBar()
        return
    with click.progressbar(length=length, label=label, file=sys.stderr) as bar:
        yield bar
