"""``iptflow migrate``: plan, and with ``--apply`` make, a protocol migration of stored courses
(docs/migration.md; the library is :mod:`iptflow.store.protocol_migration`)."""

from __future__ import annotations

import json
from typing import Any

import click

from iptflow.cli.options import db_option, db_timeout, json_option, protocols_dir_option, registry_for
from iptflow.cli.output import echo, emit_json
from iptflow.engine.registry import load_protocol_file
from iptflow.errors import IptflowError
from iptflow.protocol.variants import VariantDef
from iptflow.store.api import Store
from iptflow.store.protocol_migration import (
    CLASSES,
    CoursePlan,
    MigrationPlan,
    MigrationReport,
    MigrationTarget,
    apply_migration,
    plan_migration,
)

__all__ = ["describe_difference", "migrate"]


@click.command()
@db_option
@click.option("--to", "to_protocol", metavar="PROTOCOL[@VERSION]",
              help="The target protocol: ID (its newest version) or ID@VERSION.")
@click.option("--variant", "variant_file", type=click.Path(dir_okay=False, exists=True),
              help="The target is this variant file instead (it names its base protocol).")
@click.option("--adapt", "adaptations", multiple=True,
              help="The target's adaptations (repeatable); default: each course keeps its own.")
@click.option("--course", "course_ids", multiple=True, metavar="ID",
              help="Only this course (repeatable); default: every course.")
@click.option("--apply/--dry-run", "do_apply", default=False,
              help="Migrate (--apply) or only print the plan (--dry-run, the default).")
@click.option("--accept-changes", is_flag=True,
              help="Migrate courses whose state, facts, deviations or outcome change too.")
@click.option("--actor", help="Who migrates (recorded; needed with --apply).")
@click.option("--at", "at_time", metavar="TIME",
              help="When, ISO 8601 with a time zone (recorded; default: now, UTC).")
@click.option("--reason", help="Why (recorded).")
@json_option
@protocols_dir_option
def migrate(
    db_path: str, to_protocol: str | None, variant_file: str | None, adaptations: tuple[str, ...],
    course_ids: tuple[str, ...], do_apply: bool, accept_changes: bool, actor: str | None,
    at_time: str | None, reason: str | None, as_json: bool, protocols_dirs: tuple[str, ...],
) -> None:
    """Move stored courses to another protocol when their history replays under it.

    Each course's accepted events are replayed under the target and the course is classed
    clean (same snapshot), changes (accepted, but its snapshot differs), diverges (an event is
    rejected: the first is named), current (already there) or unresolved (the target cannot be
    resolved for it). --apply migrates clean courses (and, with --accept-changes, changing
    ones), each in its own transaction, recording a protocol_migrated entry in its hash chain.

    Exit status: 0 when every selected course is (or, dry run, would be) on the target; 1 when
    some course stays where it is; 2 for unusable input (an unknown protocol or course, a
    missing database, --apply without --actor, a bad --at).
    """
    if (to_protocol is None) == (variant_file is None):
        raise click.UsageError("give the target as exactly one of --to PROTOCOL[@VERSION] and "
                               "--variant FILE")
    if do_apply and not (actor or "").strip():
        raise click.UsageError("--apply needs --actor ID: the migration record names who made it")
    target = _target(to_protocol, variant_file, adaptations)
    registry = registry_for(protocols_dirs)
    with Store.open(db_path, create=False, readonly=not do_apply, timeout=db_timeout(),
                    registry=registry) as store:
        plan = plan_migration(store, target, course_ids or None)
        report = None
        if do_apply:
            assert actor is not None
            report = apply_migration(store, plan, actor=actor, at=at_time, reason=reason,
                                     accept_changes=accept_changes)
    moved = ("clean", "current", "changes") if accept_changes else ("clean", "current")
    if report is None:
        status = 0 if all(c.kind in moved for c in plan.courses) else 1
    else:
        status = 0 if all(o.outcome in ("migrated", "current") for o in report.outcomes) else 1
    if as_json:
        emit_json(_json(db_path, plan, report, accept_changes))
    else:
        _print(plan, report, accept_changes)
    raise SystemExit(status)


def _json(
    db_path: str, plan: MigrationPlan, report: MigrationReport | None, accept_changes: bool
) -> dict[str, Any]:
    """The one --json object: classes of the courses (as last planned), outcomes if applied."""
    courses = plan.courses if report is None else tuple(o.plan for o in report.outcomes)
    return {
        "db": db_path,
        "applied": report is not None,
        "accept_changes": accept_changes,
        "target": plan.target.to_dict(),
        "classes": {kind: sum(1 for c in courses if c.kind == kind) for kind in CLASSES},
        "outcomes": report.counts() if report is not None else None,
        "courses": [c.to_dict() for c in (plan.courses if report is None else report.outcomes)],
    }


def _target(
    to_protocol: str | None, variant_file: str | None, adaptations: tuple[str, ...]
) -> MigrationTarget:
    adapt = tuple(adaptations) if adaptations else None
    if variant_file is None:
        return MigrationTarget(protocol=to_protocol, adaptations=adapt)
    variant = load_protocol_file(variant_file)
    if not isinstance(variant, VariantDef):
        raise IptflowError(f"--variant {variant_file}: not a variant file (it has no 'extends')")
    return MigrationTarget(variant=variant, adaptations=adapt)


def _summary_label(summary: dict[str, Any]) -> str:
    adapt = f" + {', '.join(summary['adaptations'])}" if summary["adaptations"] else ""
    return f"{summary['id']} {summary['version']}{adapt}"


def _label(course: CoursePlan) -> str:
    """``ipt-depression 1.0.0 -> ipt-depression 2.0.0`` for a course's plan."""
    to = f" -> {_summary_label(course.to_protocol)}" if course.to_protocol else ""
    return _summary_label(course.from_protocol) + to


def describe_difference(diff: dict[str, Any]) -> str:
    """One line for a difference of a plan (``state: middle -> termination``, ...)."""
    name, before, after = diff["field"], diff["before"], diff["after"]
    if name == "deviations":
        old = {(d["code"], d["seq"]) for d in before}
        new = {(d["code"], d["seq"]) for d in after}
        parts = [f"+{code} (event {seq})" for code, seq in sorted(new - old, key=lambda x: x[1])]
        parts += [f"-{code} (event {seq})" for code, seq in sorted(old - new, key=lambda x: x[1])]
        return "deviations: " + (", ".join(parts) or "messages differ")
    if name == "outcome":
        return (f"outcome: {before['status'] if before else 'n/a'} -> "
                f"{after['status'] if after else 'n/a'}")
    return f"{name}: {_short(before)} -> {_short(after)}"


def _short(value: Any, width: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 3] + "..."


def _course_line(course: CoursePlan, outcome: str | None, note: str = "") -> list[str]:
    head = f"  {course.course_id:<24} {course.kind:<10}"
    if outcome is not None:
        head += f" {outcome:<9}"
    lines = [f"{head} at event {course.seq}: {_label(course)}{note}"]
    if course.divergence is not None:
        d = course.divergence
        guards = f" ({', '.join(d['guards'])})" if d["guards"] else ""
        lines.append(f"      event {d['seq']} {d['type']} is rejected {d['code']}{guards}: "
                     f"{d['message']}")
    if course.reason is not None:
        lines.append(f"      {course.reason}")
    lines += [f"      {describe_difference(diff)}" for diff in course.differences]
    return lines


def _print(
    plan: MigrationPlan, report: MigrationReport | None, accept_changes: bool
) -> None:
    counts = plan.counts()
    echo(f"plan for {len(plan.courses)} course(s): "
         + ", ".join(f"{n} {kind}" for kind, n in counts.items()))
    if report is None:
        for course in plan.courses:
            for line in _course_line(course, None):
                echo(line)
        also = "" if accept_changes else "; --accept-changes to move changing courses too"
        echo(f"dry run: nothing was written (--apply --actor ID to migrate{also})")
        return
    for outcome in report.outcomes:
        note = " (planned again: it changed since the plan)" if outcome.replanned else ""
        for line in _course_line(outcome.plan, outcome.outcome, note):
            echo(line)
    done = report.counts()
    echo(f"applied: {done['migrated']} migrated, {done['current']} already there, "
         f"{done['stayed']} stayed, {done['changed']} changed while migrating (run again)")
