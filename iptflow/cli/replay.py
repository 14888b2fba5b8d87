"""``iptflow replay``: replay course files (SPEC §6)."""

from __future__ import annotations

import json

import click

from iptflow.cli.options import json_option, protocols_dir_option, registry_for
from iptflow.engine.replay import ReplayResult, course_files, replay_file
from iptflow.errors import CourseFileError


def render_timeline(result: ReplayResult) -> str:
    """A readable timeline: line, event, state after it, rejections and deviations marked."""
    proto = result.protocol
    lines = [f"{result.file}"]
    if proto:
        adapt = f" + {', '.join(proto['adaptations'])}" if proto["adaptations"] else ""
        lines.append(
            f"course {result.course_id}: {proto['id']} {proto['version']}{adapt}  "
            f"({proto['fingerprint'][:19]}...)"
        )
    else:
        lines.append(f"course {result.course_id}: not opened")
    lines.append(f"{'line':>5}  {'event':<34} {'state after':<14} notes")
    for e in result.timeline:
        note = ""
        if e.rejection is not None:
            r = e.rejection
            mark = "expected " if e.expected_error == r.code else ""
            note = f"{mark}REJECTED {r.code}: {r.message}"
        elif e.expected_error:
            note = f"ACCEPTED, but {e.expected_error} was expected"
        for d in e.deviations:
            note += ("; " if note else "") + f"DEVIATION {d['code']}: {d['message']}"
        lines.append(f"{e.line:>5}  {str(e.event_type):<34} {str(e.state):<14} {note}".rstrip())
    for f in result.expectations_failed:
        lines.append(f"{f['line']:>5}  EXPECTATION FAILED: {f['message']}")
    out = result.outcome
    outcome = (
        f"{out['status']} ({out['instrument']} {out['baseline']} -> {out['latest']}, "
        f"{'change n/a' if out['change_pct'] is None else str(out['change_pct']) + '%'})"
        if out else "n/a"
    )
    lines.append(
        f"result: state={result.state} accepted={result.accepted} rejected={len(result.rejected)} "
        f"sessions={result.sessions_held} deviations={len(result.deviations)} outcome={outcome}"
    )
    if result.open_reviews:
        lines.append(f"open reviews: {', '.join(result.open_reviews)}")
    lines.append("PASS" if result.exit_status == 0 else "FAIL")
    return "\n".join(lines)


@click.command()
@click.argument("paths", nargs=-1, required=True)
@json_option
@protocols_dir_option
def replay(paths: tuple[str, ...], as_json: bool, protocols_dirs: tuple[str, ...]) -> None:
    """Replay course files (directories: every *.jsonl below, by relative path).

    Exit status: 0 when every expectation held, 1 when one failed or an event was rejected
    unexpectedly, 2 when a file cannot be used at all.
    """
    registry = registry_for(protocols_dirs)
    status = 0
    files = list(course_files(paths))
    if not files:
        click.echo("iptflow: error: no course files found in " + ", ".join(paths), err=True)
        raise SystemExit(2)
    for i, path in enumerate(files):
        try:
            result = replay_file(path, registry)
        except CourseFileError as exc:
            click.echo(f"iptflow: error: {exc.message}", err=True)
            status = 2
            continue
        status = max(status, result.exit_status)
        if as_json:
            click.echo(json.dumps(result.to_dict(), ensure_ascii=False))
        else:
            if i:
                click.echo()
            click.echo(render_timeline(result))
    raise SystemExit(status)
