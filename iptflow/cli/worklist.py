"""``iptflow worklist``: what every active course in the store needs, as of a given time
(docs/worklist.md). Opens the store read-only; ``--fhir FILE`` also writes the urgent and due
items as a FHIR Bundle of Task resources."""

from __future__ import annotations

import shutil
import textwrap

import click

from iptflow.cli.course import open_store
from iptflow.cli.options import db_option, json_option
from iptflow.cli.output import check_writable, echo, emit_json, write_output
from iptflow.engine.agenda import SEVERITIES
from iptflow.interop.fhir_tasks import worklist_bundle_json
from iptflow.store.worklist import Worklist

HEADINGS = {"urgent": "URGENT", "due": "DUE", "info": "FOR INFORMATION"}


def render(worklist: Worklist, width: int) -> list[str]:
    """The worklist as a clinic list: a summary line, then one block per severity, each item
    as ``course (clinician, state)  kind`` and its message wrapped under it."""
    counts = worklist.counts()
    when = worklist.to_dict()["as_of"]
    lines = [f"Worklist as of {when}: {worklist.courses} active course"
             f"{'s' if worklist.courses != 1 else ''}; "
             + ", ".join(f"{counts[s]} {s}" for s in SEVERITIES)]
    for severity in SEVERITIES:
        entries = [e for e in worklist.entries if e.item.severity == severity]
        if not entries:
            continue
        lines += ["", HEADINGS[severity]]
        for e in entries:
            who = ", ".join(x for x in (e.actor, e.state) if x)
            lines.append(f"  {e.course_id} ({who})  {e.item.kind}")
            lines += textwrap.wrap(e.item.message, width=max(40, width - 6),
                                   initial_indent="      ", subsequent_indent="      ")
    if not worklist.entries:
        lines.append("nothing is due")
    return lines


@click.command()
@click.option("--as-of", "as_of", required=True, metavar="TIME",
              help="The time the worklist is for: an RFC 3339 date-time with Z or an offset "
              "(the worklist never reads the clock).")
@click.option("--actor", default=None, metavar="ID",
              help="Only courses whose clinician (the actor of their latest event naming one) is ID.")
@click.option("--severity", "severities", multiple=True, type=click.Choice(SEVERITIES),
              help="Only items of this severity (repeatable; default: all).")
@click.option("--fhir", "fhir_path", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Also write the urgent and due items to FILE as a FHIR Bundle of Tasks "
              "(extra iptflow[fhir]).")
@db_option
@json_option
def worklist(as_of: str, actor: str | None, severities: tuple[str, ...], fhir_path: str | None,
             db_path: str, as_json: bool) -> None:
    """What every active course needs as of TIME: urgent first, then due, then by due time."""
    if fhir_path is not None:
        check_writable(fhir_path)
    with open_store(db_path, readonly=True) as store:
        result = store.worklist(as_of, actor=actor, severities=severities or None)
    if fhir_path is not None:
        write_output(fhir_path, worklist_bundle_json(result) + "\n")
    if as_json:
        emit_json(result.to_dict())
        return
    width = min(shutil.get_terminal_size((100, 24)).columns, 120)
    for line in render(result, width):
        echo(line)
