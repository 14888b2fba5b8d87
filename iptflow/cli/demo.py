"""``iptflow demo``: a complete 12-session course of standard IPT, also written to the store."""

from __future__ import annotations

import os

import click

from iptflow.cli.options import db_option, json_option
from iptflow.cli.output import echo, emit_json
from iptflow.cli.replay import render_timeline
from iptflow.engine.replay import Line, replay_lines
from iptflow.research.demo import demo_events
from iptflow.store.api import Store


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
    echo(render_timeline(result))
    echo(f"stored as course {course_id} in {where}")
    echo(f"  iptflow course show {course_id} --db {db_path}")
