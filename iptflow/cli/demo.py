"""``iptflow demo``: a complete 12-session course of standard IPT, also written to the store.

The timeline is written for a clinician: dates, events and phases in words, and a notes column
saying what happened (scores with item 9, the risk level and safety plan, the problem area and
stage, warning signs), then the outcome as "82% reduction". No test jargon, no fingerprints.
"""

from __future__ import annotations

import os
from typing import Any

import click

from iptflow.cli.options import db_option, json_option
from iptflow.cli.output import echo, emit_json
from iptflow.engine.replay import Line, ReplayResult, replay_lines
from iptflow.engine.timeline import change_in_words, instrument_label
from iptflow.research.demo import demo_events
from iptflow.store.api import Store


def _words(name: str | None) -> str:
    return (name or "").replace("_", " ")


def render_for_clinician(result: ReplayResult, events: list[dict[str, Any]]) -> str:
    """The demo course as a clinician reads it: one line per event, then the outcome."""
    course = result.course
    assert course is not None  # the demo course always opens
    protocol = course.protocol
    adapted = f" with {', '.join(protocol.adaptations)}" if protocol.adaptations else ""
    lines = [f"Course {result.course_id}: {protocol.title}{adapted} (protocol version "
             f"{protocol.version})",
             f"{'date':<11} {'event':<34} {'phase after':<12} what happened"]
    for entry, event in zip(result.timeline, events, strict=True):
        note = entry.note
        for d in entry.deviations:
            note += ("; " if note else "") + f"deviation from the protocol: {d['message']}"
        lines.append(f"{event['at'][:10]:<11} {_words(entry.event_type):<34} "
                     f"{_words(entry.state):<12} {note}".rstrip())
    out = result.outcome
    summary = f"The course is {_words(result.state)} after {result.sessions_held} sessions."
    if out:
        summary += (f" {instrument_label(out['instrument'])} {out['baseline']} at baseline, "
                    f"{out['latest']} at the end: {change_in_words(out['change_pct'])} "
                    f"({_words(out['status'])}).")
    lines.append(summary)
    deviations = ", ".join(_words(d["code"]) for d in result.deviations) or "none"
    reviews = ", ".join(result.open_reviews) or "none"
    lines.append(f"Deviations from the protocol: {deviations}. Open reviews: {reviews}.")
    return "\n".join(lines)


def free_demo_id(store: Store) -> str:
    """``demo-001``, or the first of ``demo-002``, ``demo-003``, ... not yet in the store."""
    n = 1
    while store.exists(f"demo-{n:03d}"):
        n += 1
    return f"demo-{n:03d}"


@click.command()
@db_option
@json_option
def demo(db_path: str, as_json: bool) -> None:
    """Run a complete 12-session example course, print its timeline and outcome, and store it.

    The course is stored as demo-001 in --db; if that id is taken, as the next free demo-NNN
    (an earlier demo course is never replaced). With --json: course_id, db (the database's
    absolute path) and replay (the course's result, as `iptflow replay --json` prints it).
    """
    with Store.open(db_path) as store:
        course_id = free_demo_id(store)
        events = demo_events(course_id)
        result = replay_lines(
            (Line(i, event=e) for i, e in enumerate(events, start=1)), name="demo course"
        )
        store.import_many([events])
    where = os.path.abspath(db_path)
    if as_json:
        emit_json({"course_id": course_id, "db": where, "replay": result.to_dict()})
        return
    echo(render_for_clinician(result, events))
    echo(f"stored as course {course_id} in {where}")
    echo(f"  iptflow course show {course_id} --db {db_path}")
