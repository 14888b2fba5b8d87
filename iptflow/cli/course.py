"""``iptflow course ...``: courses in the durable store (open, apply, show, list, log, export,
import). Every command takes ``--db`` (default ``./iptflow.db``, or ``$IPTFLOW_DB``) and
``--json``. Commands that only read refuse a missing database instead of creating one.

``iptflow course plot`` is defined in ``iptflow.cli.plot``; ``iptflow/cli/__init__.py`` adds it
to this group, as it adds every command to ``iptflow``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from iptflow.cli.options import json_option
from iptflow.engine.course import Course
from iptflow.engine.results import Result
from iptflow.errors import CourseFileError, IptflowError
from iptflow.store.api import Store

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_DB = "iptflow.db"


def db_option(func: F) -> F:
    """``--db PATH``: the store's database file."""
    return click.option(
        "--db",
        "db_path",
        default=DEFAULT_DB,
        show_default=True,
        envvar="IPTFLOW_DB",
        type=click.Path(dir_okay=False),
        help="The database file (also $IPTFLOW_DB).",
    )(func)


def open_store(db_path: str, *, create: bool) -> Store:
    """Open the store; read-only commands pass ``create=False`` (a missing file is an error)."""
    return Store.open(db_path, create=create)


def read_event(text: str | None, what: str = "event") -> dict[str, Any]:
    """Parse an event given as an argument, or read from stdin when ``text`` is None."""
    source = "the argument"
    if text is None:
        if sys.stdin is None or sys.stdin.isatty():
            raise IptflowError(f"give the {what} as a JSON argument or on stdin")
        text = sys.stdin.read()
        source = "stdin"
    try:
        data = json.loads(text, parse_constant=_no_constants)
    except ValueError as exc:
        raise IptflowError(f"the {what} on {source} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise IptflowError(f"the {what} on {source} must be a JSON object")
    return data


def _no_constants(token: str) -> Any:
    raise ValueError(f"{token} is not allowed")


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


def _finish(result: Result, course_id: str | None, as_json: bool) -> None:
    """Print a result; a rejection prints its JSON and exits 1."""
    if not result.ok:
        click.echo(json.dumps({"course_id": course_id, "rejected": result.to_dict()}, ensure_ascii=False))
        raise SystemExit(1)
    data = result.to_dict()
    if as_json:
        _echo_json({"course_id": course_id, "accepted": data})
        return
    moved = (
        f"{result.previous_state} -> {result.state}"
        if result.state_changed and result.previous_state
        else result.state
    )
    click.echo(f"{course_id}: event {result.seq} {result.event_type} accepted ({moved})")
    for dev in result.deviations:
        click.echo(f"  DEVIATION {dev.code}: {dev.message}")
    for review in result.opened_reviews:
        click.echo(f"  review opened: {review}")
    for review in result.closed_reviews:
        click.echo(f"  review closed: {review}")


@click.group()
def course() -> None:
    """Courses in the durable store (SQLite): open, apply, show, list, log, export, import."""


@course.command("open")
@click.argument("event_json", required=False)
@click.option("--idempotency-key", help="Retrying with the same key returns the first result.")
@click.option("--synthetic", is_flag=True, help="Mark the course as simulated data.")
@db_option
@json_option
def open_(
    event_json: str | None, idempotency_key: str | None, synthetic: bool, db_path: str, as_json: bool
) -> None:
    """Open a course from its course_opened event (JSON argument, or stdin).

    Exit status 1 (and the rejection as JSON) if the event is rejected; nothing is written.
    """
    event = read_event(event_json, "course_opened event")
    with open_store(db_path, create=True) as store:
        result = store.open_course(event, idempotency_key=idempotency_key, synthetic=synthetic)
    cid = event.get("course_id") if isinstance(event.get("course_id"), str) else None
    _finish(result, cid, as_json)


@course.command()
@click.argument("course_id")
@click.argument("event_json", required=False)
@click.option("--expected-seq", type=int, help="Reject (conflict) unless the course is at this seq.")
@click.option("--idempotency-key", help="Retrying with the same key returns the first result.")
@db_option
@json_option
def apply(
    course_id: str,
    event_json: str | None,
    expected_seq: int | None,
    idempotency_key: str | None,
    db_path: str,
    as_json: bool,
) -> None:
    """Apply an event (JSON argument, or stdin) to a stored course.

    Exit status 1 (and the rejection as JSON) if the event is rejected; nothing is written.
    """
    event = read_event(event_json)
    with open_store(db_path, create=False) as store:
        result = store.apply(
            course_id, event, expected_seq=expected_seq, idempotency_key=idempotency_key
        )
    _finish(result, course_id, as_json)


def describe(store: Store, course_id: str) -> tuple[dict[str, Any], Course]:
    """A course as ``course show --json`` prints it (snapshot, row, what is due next), and the
    course itself."""
    live = store.get(course_id)
    row = store.row(course_id)
    due = {name: [n for n, _ in live.unmet_requirements(name)] for name in live.allowed_events()}
    return {
        **live.snapshot(),
        "sessions_held": live.sessions_held,
        "open_reviews": live.open_reviews,
        "synthetic": row.synthetic,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "allowed_events": live.allowed_events(),
        "unmet_requirements": {k: v for k, v in due.items() if v},
    }, live


@course.command()
@click.argument("course_id")
@db_option
@json_option
def show(course_id: str, db_path: str, as_json: bool) -> None:
    """Show a stored course (replayed from its log): state, outcome, deviations, what is due."""
    with open_store(db_path, create=False) as store:
        data, live = describe(store, course_id)
    if as_json:
        _echo_json(data)
        return
    proto = data["protocol"]
    adapt = f" + {', '.join(proto['adaptations'])}" if proto["adaptations"] else ""
    out = data["outcome"]
    click.echo(f"course {course_id}: {proto['id']} {proto['version']}{adapt}"
               + (" (synthetic)" if data["synthetic"] else ""))
    click.echo(f"  state: {data['state']}   events: {data['seq']}   sessions held: "
               f"{data['sessions_held']}   last event: {data['updated_at']}")
    click.echo(
        "  outcome: "
        + (f"{out['status']} ({out['instrument']} {out['baseline']} -> {out['latest']}, "
           f"{out['change_pct']}%)" if out else "n/a (fewer than two measures)")
    )
    if data["open_reviews"]:
        click.echo(f"  open reviews: {', '.join(data['open_reviews'])}")
    for dev in data["deviations"]:
        click.echo(f"  DEVIATION at event {dev['seq']} ({dev['event_type']}): {dev['code']}: "
                   f"{dev['message']}")
    if live.is_closed:
        return
    click.echo("  allowed next:")
    for name in data["allowed_events"]:
        unmet = live.unmet_requirements(name)
        note = "; ".join(m for _, m in unmet)
        click.echo(f"    {name}" + (f"  (not yet: {note})" if note else ""))


@course.command("list")
@click.option("--state", help="Only courses in this state.")
@click.option("--protocol", help="Only courses of this protocol id.")
@click.option("--adaptation", help="Only courses with this adaptation.")
@db_option
@json_option
def list_(
    state: str | None, protocol: str | None, adaptation: str | None, db_path: str, as_json: bool
) -> None:
    """List stored courses (from their stored rows), sorted by id."""
    with open_store(db_path, create=False) as store:
        rows = store.list(state=state, protocol=protocol, adaptation=adaptation)
    if as_json:
        _echo_json([r.to_dict() for r in rows])
        return
    if not rows:
        click.echo("no courses")
        return
    click.echo(f"{'course':<20} {'protocol':<28} {'state':<14} {'events':>6} {'sessions':>8} "
               f"{'outcome':<16} updated")
    for r in rows:
        proto = r.protocol_id + ("+" + "+".join(r.adaptations) if r.adaptations else "")
        click.echo(
            f"{r.id:<20} {proto:<28} {r.state:<14} {r.last_seq:>6} {r.sessions_held:>8} "
            f"{r.outcome_status or '-':<16} {r.updated_at}"
        )


@course.command()
@click.argument("course_id")
@db_option
@json_option
def log(course_id: str, db_path: str, as_json: bool) -> None:
    """Show a course's stored events with their hash chain."""
    with open_store(db_path, create=False) as store:
        events = store.history(course_id)
    if as_json:
        _echo_json([e.to_dict() for e in events])
        return
    for e in events:
        actor = f" by {e.actor}" if e.actor else ""
        key = f" key={e.idempotency_key}" if e.idempotency_key else ""
        click.echo(f"{e.seq:>4}  {e.at:<25} {e.type:<34}{actor}{key}  {e.hash[:19]}...")


@course.command()
@click.argument("course_id")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), help="Write to this file.")
@db_option
@json_option
def export(course_id: str, out_path: str | None, db_path: str, as_json: bool) -> None:
    """Export a course as a course file (JSON Lines, SPEC section 6) to stdout or --out."""
    with open_store(db_path, create=False) as store:
        text = store.export_course_file(course_id)
    if out_path is None:
        click.echo(text, nl=False)
        return
    try:
        Path(out_path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise IptflowError(f"cannot write {out_path}: {exc.strerror or exc}") from None
    count = text.count("\n")
    if as_json:
        _echo_json({"course_id": course_id, "file": out_path, "events": count})
    else:
        click.echo(f"exported {course_id} ({count} events) to {out_path}")


@course.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--synthetic", is_flag=True, help="Mark the courses as simulated data.")
@click.option(
    "--skip-rejected",
    is_flag=True,
    help="Store the accepted events of a file even if some were rejected unexpectedly.",
)
@db_option
@json_option
def import_(
    files: tuple[str, ...], synthetic: bool, skip_rejected: bool, db_path: str, as_json: bool
) -> None:
    """Import course files into the store, each in its own transaction.

    A file is refused (nothing stored) if it replays with an unexpected rejection or a failed
    expectation, unless --skip-rejected. Exit status: 0 all imported, 1 some refused, 2 a file
    unusable.
    """
    status = 0
    with open_store(db_path, create=True) as store:
        for path in files:
            try:
                result = store.import_course_file(path, synthetic=synthetic, skip_rejected=skip_rejected)
            except CourseFileError as exc:
                click.echo(f"iptflow: error: {exc.message}", err=True)
                status = 2
                continue
            except IptflowError as exc:
                click.echo(f"iptflow: error: {exc.message}", err=True)
                status = max(status, 1)
                continue
            if as_json:
                click.echo(json.dumps(result.to_dict(), ensure_ascii=False))
            else:
                skipped = f", {len(result.skipped)} rejected events skipped" if result.skipped else ""
                click.echo(f"imported {result.course_id} from {path}: {result.events} events, "
                           f"state {result.state}{skipped}")
    raise SystemExit(status)
