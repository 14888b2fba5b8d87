"""``iptflow generate``: course files derived from a compiled protocol (model-based tests)."""

from __future__ import annotations

from pathlib import Path

import click

from iptflow.cli.options import json_option, protocols_dir_option, registry_for
from iptflow.cli.output import echo, emit_json, warning
from iptflow.errors import IptflowError
from iptflow.research.generate import cover_transitions, random_courses, write_courses


class GenerationIncomplete(IptflowError):
    code = "generation_incomplete"


@click.command()
@click.argument("protocol")
@click.option("--adapt", "adaptations", multiple=True, help="An adaptation to enable (repeatable).")
@click.option("--cover", type=click.Choice(["transitions"]), default=None,
              help="Write courses that take every transition and fail every requirement.")
@click.option("--random", "random_n", type=click.IntRange(min=1), default=None,
              help="Write N random valid courses.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for --random.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Directory to write *.course.jsonl files into.")
@json_option
@protocols_dir_option
def generate(protocol: str, adaptations: tuple[str, ...], cover: str | None, random_n: int | None,
             seed: int, out_dir: str, as_json: bool, protocols_dirs: tuple[str, ...]) -> None:
    """Write course files for PROTOCOL that `iptflow replay` and the pytest plugin check.

    The same arguments always write the same files, byte for byte. With --json: out, files
    (the paths written, in order) and unfailed_requirements (requirements no course could make
    fail, also warned about on stderr).
    """
    if cover is None and random_n is None:
        raise click.UsageError("give --cover transitions, --random N, or both")
    compiled = registry_for(protocols_dirs).compile(protocol, adaptations)
    courses = []
    unfailed: list[str] = []
    if cover is not None:
        covering, uncovered, unfailed = cover_transitions(compiled)
        if uncovered:
            parts = [f"{e} from {s} (route {i})" for s, e, i in uncovered]
            raise GenerationIncomplete("could not take these transitions: " + "; ".join(parts))
        for name in unfailed:
            warning(f"no course could make requirement {name} fail "
                    "(it may hold for every course of this protocol)")
        courses += covering
    if random_n is not None:
        courses += random_courses(compiled, random_n, seed)
    try:
        paths = write_courses(courses, Path(out_dir))
    except OSError as exc:
        raise IptflowError(f"cannot write course files to {out_dir}: {exc.strerror or exc}") from None
    if as_json:
        emit_json({"out": out_dir, "files": [str(p) for p in paths],
                   "unfailed_requirements": list(unfailed)})
        return
    echo(f"wrote {len(paths)} course files to {out_dir}")
