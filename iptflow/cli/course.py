"""``iptflow course ...``: courses in the durable store (open, apply, show, list, log, export,
import). Every command takes ``--db`` (default ``./iptflow.db``, or ``$IPTFLOW_DB``) and
``--json``. Commands that only read refuse a missing database instead of creating one.

``iptflow course plot`` is defined in ``iptflow.cli.plot``; ``iptflow/cli/__init__.py`` adds it
to this group, as it adds every command to ``iptflow``.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from iptflow.cli.options import DEFAULT_DB, db_option, db_timeout, json_option, progress_option
from iptflow.cli.output import check_writable, echo, emit_json, error, progress, show_progress, write_output
from iptflow.engine.course import Course
from iptflow.engine.jsonio import strict_loads
from iptflow.engine.results import Result
from iptflow.errors import IptflowError
from iptflow.store.api import ImportResult, Store
from iptflow.store.errors import CourseExists, ImportRefused, StoreError

__all__ = ["DEFAULT_DB", "course", "db_option", "describe", "open_store", "read_event"]


def open_store(db_path: str, *, create: bool = False, readonly: bool = False) -> Store:
    """Open the store; ``create=False``: a missing file is an error; commands that only read
    pass ``readonly=True`` (SQLite ``mode=ro``: nothing created or migrated, a file that is not
    an iptflow store refused)."""
    return Store.open(db_path, create=create, readonly=readonly, timeout=db_timeout())


def read_event(text: str | None, what: str = "event") -> dict[str, Any]:
    """Parse an event given as an argument, or read from stdin when ``text`` is None."""
    source = "the argument"
    if text is None:
        if sys.stdin is None or sys.stdin.isatty():
            raise IptflowError(f"give the {what} as a JSON argument or on stdin")
        text = sys.stdin.read()
        source = "stdin"
    try:
        data = strict_loads(text)
    except ValueError as exc:
        raise IptflowError(f"the {what} on {source} is not valid JSON: {exc}") from None
    except RecursionError:
        raise IptflowError(f"the {what} on {source} is nested too deeply to read") from None
    if not isinstance(data, dict):
        raise IptflowError(f"the {what} on {source} must be a JSON object")
    return data


def _finish(result: Result, course_id: str | None, as_json: bool) -> None:
    """Print a result; a rejection prints its JSON and exits 1."""
    if not result.ok:
        emit_json({"course_id": course_id, "rejected": result.to_dict()})
        raise SystemExit(1)
    data = result.to_dict()
    if as_json:
        emit_json({"course_id": course_id, "accepted": data})
        return
    moved = (
        f"{result.previous_state} -> {result.state}"
        if result.state_changed and result.previous_state
        else result.state
    )
    echo(f"{course_id}: event {result.seq} {result.event_type} accepted ({moved})")
    for dev in result.deviations:
        echo(f"  DEVIATION {dev.code}: {dev.message}")
    for review in result.opened_reviews:
        echo(f"  review opened: {review}")
    for review in result.closed_reviews:
        echo(f"  review closed: {review}")


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


def describe(store: Store, course_id: str, *, verify: bool = False) -> tuple[dict[str, Any], Course]:
    """A course as ``course show --json`` prints it (snapshot, row, what is due next), and the
    course itself (``verify``: check the stored events' hashes first)."""
    live = store.get(course_id, verify=verify)
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
@click.option("--verify", "verify_hashes", is_flag=True,
              help="Check every stored event against its hash first (a mismatch: exit 2).")
def show(course_id: str, db_path: str, as_json: bool, verify_hashes: bool) -> None:
    """Show a stored course (replayed from its log): state, outcome, deviations, what is due."""
    with open_store(db_path, readonly=True) as store:
        data, live = describe(store, course_id, verify=verify_hashes)
    if as_json:
        emit_json(data)
        return
    proto = data["protocol"]
    adapt = f" + {', '.join(proto['adaptations'])}" if proto["adaptations"] else ""
    out = data["outcome"]
    echo(f"course {course_id}: {proto['id']} {proto['version']}{adapt}"
               + (" (synthetic)" if data["synthetic"] else ""))
    echo(f"  state: {data['state']}   events: {data['seq']}   sessions held: "
               f"{data['sessions_held']}   last event: {data['updated_at']}")
    echo(
        "  outcome: "
        + (f"{out['status']} ({out['instrument']} {out['baseline']} -> {out['latest']}, "
           f"{out['change_pct']}%)" if out else "n/a (fewer than two measures)")
    )
    if data["open_reviews"]:
        echo(f"  open reviews: {', '.join(data['open_reviews'])}")
    for dev in data["deviations"]:
        echo(f"  DEVIATION at event {dev['seq']} ({dev['event_type']}): {dev['code']}: "
                   f"{dev['message']}")
    if live.is_closed:
        return
    echo("  allowed next:")
    for name in data["allowed_events"]:
        unmet = live.unmet_requirements(name)
        note = "; ".join(m for _, m in unmet)
        echo(f"    {name}" + (f"  (not yet: {note})" if note else ""))


@course.command("list")
@click.option("--state", help="Only courses in this state.")
@click.option("--protocol", help="Only courses of this protocol: ID (every version) or ID@VERSION.")
@click.option("--adaptation", help="Only courses with this adaptation.")
@db_option
@json_option
def list_(
    state: str | None, protocol: str | None, adaptation: str | None, db_path: str, as_json: bool
) -> None:
    """List stored courses (from their stored rows), sorted by id."""
    with open_store(db_path, readonly=True) as store:
        rows = store.list(state=state, protocol=protocol, adaptation=adaptation)
    if as_json:
        for r in rows:
            emit_json(r.to_dict())
        return
    if not rows:
        echo("no courses")
        return
    echo(f"{'course':<20} {'protocol':<28} {'state':<14} {'events':>6} {'sessions':>8} "
               f"{'outcome':<16} updated")
    for r in rows:
        proto = r.protocol_id + ("+" + "+".join(r.adaptations) if r.adaptations else "")
        echo(
            f"{r.id:<20} {proto:<28} {r.state:<14} {r.last_seq:>6} {r.sessions_held:>8} "
            f"{r.outcome_status or '-':<16} {r.updated_at}"
        )


@course.command()
@click.argument("course_id")
@db_option
@json_option
@click.option("--verify", "verify_hashes", is_flag=True,
              help="Check every stored event against its hash first (a mismatch: exit 2).")
def log(course_id: str, db_path: str, as_json: bool, verify_hashes: bool) -> None:
    """Show a course's stored events with their hash chain, and its protocol migrations
    (protocol_migrated records) where they stand in the chain."""
    with open_store(db_path, readonly=True) as store:
        events = store.history(course_id, verify=verify_hashes)
        migrated = store.migrations(course_id)
        labels = {fp: protocol_label(store, fp)
                  for m in migrated for fp in (m.from_fingerprint, m.to_fingerprint)}
    for e in events:
        if as_json:
            emit_json(e.to_dict())
        else:
            actor = f" by {e.actor}" if e.actor else ""
            key = f" key={e.idempotency_key}" if e.idempotency_key else ""
            echo(f"{e.seq:>4}  {e.at:<25} {e.type:<34}{actor}{key}  {e.hash[:19]}...")
        for m in (m for m in migrated if m.after_seq == e.seq):
            if as_json:
                emit_json(m.to_dict())
                continue
            why = f": {m.reason}" if m.reason else ""
            echo(f"{'':>4}  {m.at:<25} {'protocol_migrated':<34}{' by ' + m.actor}  "
                 f"{m.hash[:19]}...")
            echo(f"{'':>6}{labels[m.from_fingerprint]} -> {labels[m.to_fingerprint]} ({m.kind}){why}")


def protocol_label(store: Store, fingerprint: str) -> str:
    """``ipt-depression 2.0.0 + bipolar`` for a stored protocol (its fingerprint if it does not
    load with the installed plugins)."""
    try:
        summary = store.protocols.compiled(fingerprint).protocol.summary()
    except StoreError:
        return fingerprint[:19] + "..."
    adapt = f" + {', '.join(summary['adaptations'])}" if summary["adaptations"] else ""
    return f"{summary['id']} {summary['version']}{adapt}"


@course.command()
@click.argument("course_id")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), help="Write to this file.")
@db_option
@json_option
@click.option("--verify", "verify_hashes", is_flag=True,
              help="Check every stored event against its hash first (a mismatch: exit 2).")
def export(
    course_id: str, out_path: str | None, db_path: str, as_json: bool, verify_hashes: bool
) -> None:
    """Export a course as a course file (JSON Lines, SPEC section 6) to stdout or --out.

    The course file is the output: with --json (which needs --out) stdout gets one object
    about the run instead: course_id, file, events.
    """
    if as_json and out_path is None:
        raise click.UsageError("--json needs --out (without --out the course file itself is printed)")
    if out_path is not None:
        check_writable(out_path)
    with open_store(db_path, readonly=True) as store:
        text = store.export_course_file(course_id, verify=verify_hashes)
    if out_path is None:
        echo(text, nl=False)
        return
    write_output(out_path, text)
    count = text.count("\n")
    if as_json:
        emit_json({"course_id": course_id, "file": out_path, "events": count})
    else:
        echo(f"exported {course_id} ({count} events) to {out_path}")


@course.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--synthetic", is_flag=True, help="Mark the courses as simulated data.")
@click.option(
    "--skip-rejected",
    is_flag=True,
    help="Store the accepted events of a file even if some were rejected unexpectedly.",
)
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True,
              help="Files stored per transaction: a batch is imported whole or not at all.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes that replay the files of a batch (with --batch; from 32 files).")
@db_option
@json_option
@progress_option
def import_(
    files: tuple[str, ...], synthetic: bool, skip_rejected: bool, batch: int, workers: int,
    db_path: str, as_json: bool, progress_choice: bool | None,
) -> None:
    """Import course files into the store, each in its own transaction (--batch N: N files
    per transaction, all of them or none; --workers N: the files of a batch are replayed in N
    processes).

    A file is refused (nothing stored) if it replays with an unexpected rejection or a failed
    expectation, unless --skip-rejected; with --batch, so is the rest of its batch, and the
    refused file is named. With --json, one object per imported file (JSON Lines). Exit
    status: 0 all imported, 1 some refused, 2 a file unusable.
    """
    status = 0
    show = show_progress(progress_choice, stdout_too=True) and len(files) > 1
    with open_store(db_path, create=True) as store, progress(len(files), "importing", show) as bar:
        if batch == 1:
            for path in files:
                status = max(status, _import_one(store, path, synthetic, skip_rejected, as_json))
                bar.update(1)
        for start in range(0, len(files) if batch > 1 else 0, batch):
            chunk = files[start:start + batch]
            status = max(status, _import_batch(store, chunk, synthetic, skip_rejected, as_json,
                                               workers))
            bar.update(len(chunk))
    raise SystemExit(status)


def _import_batch(store: Store, paths: tuple[str, ...], synthetic: bool, skip_rejected: bool,
                  as_json: bool, workers: int = 1) -> int:
    """Import files in one transaction and print what happened; the exit status as
    :func:`_import_one`. A refused file is named with the batch it held back."""
    try:
        results = store.import_course_files(paths, synthetic=synthetic, skip_rejected=skip_rejected,
                                            workers=workers)
    except (ImportRefused, CourseExists) as exc:  # a file is fine, its course is refused
        status, message = 1, exc.message
    except StoreError:
        raise  # the store itself cannot be used: exit 2 (cli/__init__.py)
    except IptflowError as exc:  # a file cannot be used
        status, message = 2, exc.message
    else:
        for result in results:
            _print_import(result, as_json)
        return 0
    error(f"{message}; nothing of its batch of {len(paths)} files was imported "
          f"({paths[0]} .. {paths[-1]})")
    return status


def _import_one(store: Store, path: str, synthetic: bool, skip_rejected: bool, as_json: bool) -> int:
    """Import one file and print what happened; its exit status (0, 1 refused, 2 unusable)."""
    try:
        result = store.import_course_file(path, synthetic=synthetic, skip_rejected=skip_rejected)
    except (ImportRefused, CourseExists) as exc:  # the file is fine, its course is refused
        error(exc.message)
        return 1
    except StoreError:
        raise  # the store itself cannot be used: one line and exit 2 (cli/__init__.py), stop here
    except IptflowError as exc:  # the file cannot be used (CourseFileError, an unknown protocol)
        error(exc.message)
        return 2
    _print_import(result, as_json)
    return 0


def _print_import(result: ImportResult, as_json: bool) -> None:
    if as_json:
        emit_json(result.to_dict())
    else:
        skipped = f", {len(result.skipped)} rejected events skipped" if result.skipped else ""
        echo(f"imported {result.course_id} from {result.file}: {result.events} events, "
             f"state {result.state}{skipped}")
