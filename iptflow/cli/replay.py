"""``iptflow replay``: replay course files (SPEC §6)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import click

from iptflow.cli.options import json_option, progress_option, protocols_dir_option, registry_for
from iptflow.cli.output import echo, emit_json, error, progress, show_progress
from iptflow.engine.registry import Registry
from iptflow.engine.replay import (
    Line,
    ReplayResult,
    Spool,
    TimelineEntry,
    course_files,
    read_lines,
    replay_file,
    replay_lines,
)
from iptflow.errors import CourseFileError


def render_timeline(result: ReplayResult) -> str:
    """A readable timeline: line, event, state after it, rejections and deviations marked."""
    return "\n".join(timeline_lines(result, (entry_line(e) for e in result.timeline)))


def entry_line(e: TimelineEntry) -> str:
    """One line of the timeline: line number, event, state after it, what happened."""
    note = e.note
    if e.rejection is not None:
        r = e.rejection
        mark = "expected " if e.expected_error == r.code else ""
        note = f"{mark}REJECTED {r.code}: {r.message}"
    elif e.expected_error:
        note += ("; " if note else "") + f"ACCEPTED, but {e.expected_error} was expected"
    for d in e.deviations:
        note += ("; " if note else "") + f"DEVIATION {d['code']}: {d['message']}"
    return f"{e.line:>5}  {str(e.event_type):<34} {str(e.state):<14} {note}".rstrip()


def timeline_lines(result: ReplayResult, entries: Iterable[str]) -> Iterator[str]:
    """The whole timeline, line by line: a header, ``entries`` (from :func:`entry_line`), the
    failed expectations and the result."""
    proto = result.protocol
    yield f"{result.file}"
    if proto:
        adapt = f" + {', '.join(proto['adaptations'])}" if proto["adaptations"] else ""
        yield (f"course {result.course_id}: {proto['id']} {proto['version']}{adapt}  "
               f"({proto['fingerprint'][:19]}...)")
    else:
        yield f"course {result.course_id}: not opened"
    yield f"{'line':>5}  {'event':<34} {'state after':<14} notes"
    yield from entries
    for f in result.expectations_failed:
        yield f"{f['line']:>5}  EXPECTATION FAILED: {f['message']}"
    out = result.outcome
    outcome = (
        f"{out['status']} ({out['instrument']} {out['baseline']} -> {out['latest']}, "
        f"{'change n/a' if out['change_pct'] is None else str(out['change_pct']) + '%'})"
        if out else "n/a"
    )
    yield (f"result: state={result.state} accepted={result.accepted} "
           f"rejected={len(result.rejected)} sessions={result.sessions_held} "
           f"deviations={len(result.deviations)} outcome={outcome}")
    if result.open_reviews:
        yield f"open reviews: {', '.join(result.open_reviews)}"
    yield "PASS" if result.exit_status == 0 else "FAIL"


def under_protocol(lines: Iterable[Line], protocol: str) -> Iterator[Line]:
    """The lines of a course file, its first (``course_opened``) naming ``protocol`` instead of
    the protocol it names; its adaptations and every other line as they are."""
    first = True
    for line in lines:
        if first and line.event is not None and line.event.get("type") == "course_opened":
            line = replace(line, event={**line.event, "protocol": protocol})
        first = False
        yield line


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--protocol", metavar="PROTOCOL[@VERSION]",
              help="Replay under this protocol instead of the one each file names (what-if; "
              "each file keeps its adaptations).")
@json_option
@protocols_dir_option
@progress_option
def replay(paths: tuple[str, ...], protocol: str | None, as_json: bool,
           protocols_dirs: tuple[str, ...], progress_choice: bool | None) -> None:
    """Replay course files (directories: every *.jsonl below, by relative path).

    With more than one file, ends with a summary: files passed, failed and unusable, events
    accepted and rejected (with --json, a last object {"summary": {...}}).

    Exit status: 0 when every expectation held, 1 when one failed or an event was rejected
    unexpectedly, 2 when a file cannot be used at all.
    """
    registry = registry_for(protocols_dirs)
    if protocol is not None:
        registry.find(protocol)  # an unknown protocol or version: one line, exit 2
    files = list(course_files(paths))
    if not files:
        error("no course files found in " + ", ".join(paths))
        raise SystemExit(2)
    summary = ReplaySummary()
    show = show_progress(progress_choice, stdout_too=True) and len(files) > 1
    with progress(len(files), "replaying", show) as bar:
        for path in files:
            _replay_one(path, registry, as_json, summary, protocol)
            bar.update(1)
    if len(files) > 1:
        if as_json:
            emit_json({"summary": summary.to_dict()})
        else:
            echo()
            echo(summary.line())
    raise SystemExit(summary.status)


def _replay_one(
    path: Path, registry: Registry, as_json: bool, summary: ReplaySummary, protocol: str | None
) -> None:
    """Replay one file (under ``protocol`` if given), print its result (or its one-line error)
    and count it in ``summary``."""
    rendered = Spool()  # the timeline, rendered as it happens (streaming: nothing kept)
    on_entry = None if as_json else (lambda e: rendered.append(entry_line(e)))
    try:
        if protocol is None:
            result = replay_file(path, registry, streaming=True, on_entry=on_entry)
        else:
            def lines() -> Iterator[Line]:
                return under_protocol(read_lines(path), protocol)
            result = replay_lines(lines(), str(path), registry, reread=lines, on_entry=on_entry)
    except CourseFileError as exc:
        error(exc.message)
        summary.unusable += 1
        return
    summary.add(result)
    if as_json:  # one line of JSON, written piece by piece
        for piece in result.json_chunks():
            echo(piece, nl=False)
        echo()
        return
    if summary.printed > 1:
        echo()
    for text in timeline_lines(result, rendered):
        echo(text)


@dataclass
class ReplaySummary:
    """What a replay of several files adds up to."""

    passed: int = 0
    failed: int = 0
    unusable: int = 0
    accepted: int = 0
    rejected: int = 0

    @property
    def printed(self) -> int:
        return self.passed + self.failed

    @property
    def status(self) -> int:
        return 2 if self.unusable else 1 if self.failed else 0

    def add(self, result: ReplayResult) -> None:
        if result.exit_status == 0:
            self.passed += 1
        else:
            self.failed += 1
        self.accepted += result.accepted
        self.rejected += len(result.rejected)

    def to_dict(self) -> dict[str, int]:
        return {
            "files": self.passed + self.failed + self.unusable,
            "passed": self.passed,
            "failed": self.failed,
            "unusable": self.unusable,
            "events_accepted": self.accepted,
            "events_rejected": self.rejected,
        }

    def line(self) -> str:
        """``summary: 3 files, 2 passed, 1 failed, 0 unusable; 41 events accepted, 2 rejected``."""
        d = self.to_dict()
        return (f"summary: {d['files']} files, {d['passed']} passed, {d['failed']} failed, "
                f"{d['unusable']} unusable; {d['events_accepted']} events accepted, "
                f"{d['events_rejected']} rejected")
