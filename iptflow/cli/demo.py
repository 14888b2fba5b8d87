"""``iptflow demo``: a complete 12-session course of standard IPT."""

from __future__ import annotations

import click

from ..demo import demo_events
from ..replay import Line, replay_lines
from . import cli
from .replay import render_timeline


@cli.command()
def demo() -> None:
    """Run a complete 12-session example course and print its timeline and outcome."""
    events = demo_events()
    result = replay_lines(
        (Line(i, event=e) for i, e in enumerate(events, start=1)), name="demo course"
    )
    click.echo(render_timeline(result))
