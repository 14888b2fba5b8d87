"""Protocol migration checked by replay: move stored courses to another resolved protocol.

A course is its event log, so it can move to another protocol (a new version, a variant, other
adaptations) exactly when its whole history replays under the new rules.
:func:`plan_migration` replays each selected course's accepted events under the target with the
store's one replay (:func:`~iptflow.store.loading.replay_log`) and classifies it
(:data:`CLASSES`); :func:`apply_migration` re-pins the courses the plan allows, each in its own
transaction, appending a ``protocol_migrated`` record to the course's hash chain
(:meth:`Store.record_migration <iptflow.store.api.Store.record_migration>`). Events are never
rewritten. docs/migration.md is the guide; this module is named apart from
:mod:`iptflow.store.migrations`, which holds the schema's migrations.

>>> from iptflow.store import Store
>>> from iptflow.store.protocol_migration import apply_migration, plan_migration
>>> store = Store.open(":memory:")
>>> store.import_many([[{"type": "course_opened", "at": "2025-01-06T09:00:00Z",
...                      "course_id": "c-1", "protocol": "ipt-depression@1.0.0"}]])
['c-1']
>>> plan = plan_migration(store, "ipt-depression@2.0.0")
>>> plan.counts()["clean"], plan.courses[0].to_protocol["version"]
(1, '2.0.0')
>>> report = apply_migration(store, plan, actor="dr-a", at="2025-06-01T09:00:00Z")
>>> report.outcomes[0].outcome, store.get("c-1").protocol.version
('migrated', '2.0.0')
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from iptflow.engine.course import Course
from iptflow.engine.registry import Registry
from iptflow.errors import ProtocolError
from iptflow.protocol.compose import compose
from iptflow.protocol.models import ResolvedProtocol
from iptflow.protocol.variants import VariantDef
from iptflow.store.errors import InvalidArgument, UnknownCourse
from iptflow.store.loading import load_course, replay_log
from iptflow.store.recorder import utc_now
from iptflow.store.rows import MigrationRecord

if TYPE_CHECKING:
    from iptflow.store.api import Store

__all__ = [
    "CLASSES",
    "CourseOutcome",
    "CoursePlan",
    "MigrationPlan",
    "MigrationReport",
    "MigrationTarget",
    "apply_migration",
    "differences",
    "plan_migration",
]

#: What a plan says of a course, in the order plans count them:
#: ``clean`` every event accepted under the target, same snapshot (state, seq, facts,
#: deviations, outcome); ``changes`` every event accepted, but the snapshot differs (listed);
#: ``diverges`` the target rejects an event (the first: seq, type, code, guards, message);
#: ``current`` the course is already pinned to the target (migrating is a no-op);
#: ``unresolved`` the target cannot be resolved for this course (e.g. one of its adaptations
#: has no version for the target's base version).
CLASSES: tuple[str, ...] = ("clean", "changes", "diverges", "current", "unresolved")

#: What applying did to a course: moved, nothing to do, left where it is by its class, or
#: left because it changed between the last replay and its transaction (plan again).
OUTCOMES: tuple[str, ...] = ("migrated", "current", "stayed", "changed")


@dataclass(frozen=True)
class MigrationTarget:
    """Where courses go: exactly one of ``protocol`` (``id`` for the newest version, or
    ``id@version``), ``variant`` (a variant, which names its own base) or ``resolved`` (one
    resolved protocol for every course, as it is).

    ``adaptations`` (with ``protocol`` or ``variant``): the target's adaptations; ``None``
    keeps each course's own, resolved in the version that applies to the target's base version
    (a variant adds its own adaptations to them).
    """

    protocol: str | None = None
    adaptations: tuple[str, ...] | None = None
    variant: VariantDef | None = None
    resolved: ResolvedProtocol | None = None

    def __post_init__(self) -> None:
        given = [x for x in (self.protocol, self.variant, self.resolved) if x is not None]
        if len(given) != 1:
            raise InvalidArgument("a migration target is exactly one of a protocol, a variant "
                                  "or a resolved protocol", argument="target")
        if self.resolved is not None and self.adaptations is not None:
            raise InvalidArgument("a resolved protocol has its adaptations already; do not give "
                                  "adaptations with it", argument="adaptations")

    def check(self, registry: Registry) -> None:
        """Raise the registry's typed error if the protocol or the variant's base is unknown."""
        if self.protocol is not None:
            registry.find(self.protocol)
        elif self.variant is not None and isinstance(registry.find(self.variant.extends), VariantDef):
            raise ProtocolError(f"variant {self.variant.id} extends {self.variant.extends}, "
                                "which is itself a variant")

    def for_course(self, registry: Registry, pinned: ResolvedProtocol) -> ResolvedProtocol:
        """The resolved target of a course now pinned to ``pinned`` (ProtocolError if none)."""
        if self.resolved is not None:
            return self.resolved
        names = list(self.adaptations if self.adaptations is not None else pinned.adaptations)
        if self.variant is None:
            assert self.protocol is not None
            return registry.resolve(self.protocol, names)
        base = registry.find(self.variant.extends)
        assert not isinstance(base, VariantDef)  # check() refused it
        names = sorted(set(names) | set(self.variant.adaptations))
        return compose(base, [registry.adaptation(n, base.version) for n in names], self.variant)

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "adaptations": None if self.adaptations is None else list(self.adaptations),
            "variant": (f"{self.variant.id}@{self.variant.version}"
                        if self.variant is not None else None),
            "fingerprint": self.resolved.fingerprint if self.resolved is not None else None,
        }


@dataclass(frozen=True)
class CoursePlan:
    """What migrating one course would do, decided at its event ``seq`` (last hash
    ``last_hash``). ``to_protocol`` is None when ``unresolved`` (``reason`` says why)."""

    course_id: str
    kind: str
    seq: int
    last_hash: str
    from_protocol: dict[str, Any]
    to_protocol: dict[str, Any] | None
    differences: tuple[dict[str, Any], ...] = ()
    divergence: dict[str, Any] | None = None
    reason: str | None = None
    migrated: Course | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "course_id": self.course_id,
            "class": self.kind,
            "seq": self.seq,
            "from": self.from_protocol,
            "to": self.to_protocol,
            "differences": list(self.differences),
            "divergence": self.divergence,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class MigrationPlan:
    """A plan for the courses of one store (``path``), in course id order."""

    path: str
    target: MigrationTarget
    courses: tuple[CoursePlan, ...]

    def counts(self) -> dict[str, int]:
        """How many courses each class holds (every class, 0 included)."""
        return {kind: sum(1 for c in self.courses if c.kind == kind) for kind in CLASSES}

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target.to_dict(), "counts": self.counts(),
                "courses": [c.to_dict() for c in self.courses]}


@dataclass(frozen=True)
class CourseOutcome:
    """What :func:`apply_migration` did to one course: ``outcome`` (:data:`OUTCOMES`), the
    plan it acted on (``replanned`` when the course had changed since the plan given) and the
    ``protocol_migrated`` record it wrote, if any."""

    plan: CoursePlan
    outcome: str
    replanned: bool = False
    record: MigrationRecord | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**self.plan.to_dict(), "outcome": self.outcome, "replanned": self.replanned,
                "record": self.record.to_dict() if self.record is not None else None}


@dataclass(frozen=True)
class MigrationReport:
    """The result of :func:`apply_migration`, one outcome per course of the plan."""

    target: MigrationTarget
    outcomes: tuple[CourseOutcome, ...]

    def counts(self) -> dict[str, int]:
        return {name: sum(1 for o in self.outcomes if o.outcome == name) for name in OUTCOMES}

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target.to_dict(), "counts": self.counts(),
                "courses": [o.to_dict() for o in self.outcomes]}


def plan_migration(
    store: Store,
    target: MigrationTarget | ResolvedProtocol | str,
    courses: Iterable[str] | None = None,
) -> MigrationPlan:
    """Replay each course (``courses``, default every course, by id) under ``target`` and
    classify it (:data:`CLASSES`). Writes nothing.

    ``target``: a :class:`MigrationTarget`, a protocol reference (``"ipt-depression@2.0.0"``:
    each course keeps its adaptations) or a :class:`ResolvedProtocol` (every course goes to
    exactly it). Raises :class:`~iptflow.errors.UnknownProtocol` for an unknown target,
    :class:`UnknownCourse` for an id the store does not hold, the store's errors for a course
    that does not load as recorded, and :class:`~iptflow.errors.PluginError` when a plugin's
    code raises during a replay.
    """
    goal = as_target(target)
    goal.check(store.registry)
    ids = store.recorder.course_ids() if courses is None else list(dict.fromkeys(courses))
    return MigrationPlan(store.path, goal, tuple(_plan_course(store, goal, cid) for cid in ids))


def as_target(target: MigrationTarget | ResolvedProtocol | str) -> MigrationTarget:
    if isinstance(target, MigrationTarget):
        return target
    if isinstance(target, ResolvedProtocol):
        return MigrationTarget(resolved=target)
    if isinstance(target, str):
        return MigrationTarget(protocol=target)
    raise InvalidArgument(f"target must be a MigrationTarget, a ResolvedProtocol or a protocol "
                          f"reference, got {type(target).__name__}", argument="target")


def _plan_course(store: Store, target: MigrationTarget, course_id: str) -> CoursePlan:
    """One course's plan, from one read snapshot of its row, events and migration records."""
    recorder = store.recorder
    with recorder.read():
        row = recorder.course_row(course_id)
        if row is None:
            raise UnknownCourse(f"no course {course_id!r} in {store.path}", course_id=course_id)
        events = recorder.events(course_id)
        migrated = recorder.course_migrations(course_id)
    pinned = store.protocols.compiled(row["fingerprint"], course_id)
    current = load_course(row, events, pinned, migrated)
    plan = CoursePlan(course_id, "unresolved", row["last_seq"], row["last_hash"],
                      current.protocol.summary(), None)
    try:
        resolved = target.for_course(store.registry, current.protocol)
        compiled = store.registry.compile_resolved(resolved)
    except ProtocolError as exc:
        return _with(plan, reason=exc.message)
    plan = _with(plan, to_protocol=resolved.summary())
    if resolved.fingerprint == row["fingerprint"]:
        return _with(plan, kind="current")
    replayed = replay_log(current.history, store.registry, compiled)
    rejection = replayed.rejection
    if rejection is not None:
        return _with(plan, kind="diverges", divergence={
            "seq": replayed.seq, "type": rejection.event_type, "code": rejection.code,
            "guards": list(rejection.guards), "message": rejection.message,
        })
    assert replayed.course is not None
    found = differences(current, replayed.course)
    return _with(plan, kind="changes" if found else "clean", differences=tuple(found),
                 migrated=replayed.course)


def _with(plan: CoursePlan, **changes: Any) -> CoursePlan:
    values = {name: getattr(plan, name) for name in CoursePlan.__dataclass_fields__}
    return CoursePlan(**{**values, **changes})


def differences(before: Course, after: Course) -> list[dict[str, Any]]:
    """What differs between two snapshots of a course, leaving out the protocol it runs on:
    ``{"field", "before", "after"}`` for ``state``, ``outcome``, ``deviations`` and each key of
    ``facts`` (``facts.open_reviews``, ...) that differs. Empty: the course is the same."""
    old, new = before.snapshot(), after.snapshot()
    out = [{"field": key, "before": old[key], "after": new[key]}
           for key in ("state", "seq", "outcome", "deviations") if old[key] != new[key]]
    out += [{"field": f"facts.{key}", "before": value, "after": new["facts"].get(key)}
            for key, value in old["facts"].items() if new["facts"].get(key) != value]
    return out


def apply_migration(
    store: Store,
    plan: MigrationPlan,
    *,
    actor: str,
    at: str | None = None,
    reason: str | None = None,
    accept_changes: bool = False,
) -> MigrationReport:
    """Move the courses ``plan`` allows to its target: ``clean`` ones, and ``changes`` with
    ``accept_changes``; ``diverges``, ``unresolved`` and unaccepted ``changes`` stay where they
    are, ``current`` ones need nothing.

    First, without writing, every course that changed since ``plan`` was made (another event,
    another migration) is planned again, so that a plugin raising during a replay
    (:class:`~iptflow.errors.PluginError`) leaves every course unchanged. Then each course
    migrates in its own transaction, only if it is still at the seq and hash it was planned at
    (else its outcome is ``changed`` and nothing is written for it). The record names
    ``actor``, ``at`` (ISO 8601 with a time zone; default: now, UTC) and ``reason``.
    """
    when = _checked_args(store, plan, actor, at, reason)
    final = []
    for course in plan.courses:  # plan again, before any write, what changed since the plan
        row = store.recorder.course_row(course.course_id)
        stale = row is None or (row["last_seq"], row["last_hash"]) != (course.seq, course.last_hash)
        if stale or (course.kind in ("clean", "changes") and course.migrated is None):
            final.append((_plan_course(store, plan.target, course.course_id), stale))
        else:
            final.append((course, False))
    outcomes = []
    for course, replanned in final:
        outcome, record = _apply_one(store, course, accept_changes, {
            "from": course.from_protocol["fingerprint"],
            "to": course.to_protocol["fingerprint"] if course.to_protocol else None,
            "class": course.kind, "actor": actor, "at": when, "reason": reason,
        })
        outcomes.append(CourseOutcome(course, outcome, replanned, record))
    return MigrationReport(plan.target, tuple(outcomes))


def _apply_one(
    store: Store, course: CoursePlan, accept_changes: bool, record: Mapping[str, Any]
) -> tuple[str, MigrationRecord | None]:
    if course.kind == "current":
        return "current", None
    if course.kind not in ("clean", "changes") or (course.kind == "changes" and not accept_changes):
        return "stayed", None
    assert course.migrated is not None
    written = store.record_migration(course.migrated, expected_hash=course.last_hash, record=record)
    return ("changed", None) if written is None else ("migrated", written)


def _checked_args(
    store: Store, plan: MigrationPlan, actor: object, at: object, reason: object
) -> str:
    """``at`` as given, or now; :class:`InvalidArgument` for a plan of another store, an
    empty actor, a time without a time zone or a reason that is not text."""
    if not isinstance(plan, MigrationPlan):
        raise InvalidArgument(f"plan must be a MigrationPlan, got {type(plan).__name__}",
                              argument="plan")
    if plan.path != store.path:
        raise InvalidArgument(f"the plan was made for {plan.path}, not {store.path}",
                              argument="plan")
    if not isinstance(actor, str) or not actor.strip():
        raise InvalidArgument("actor must name who migrates (a non-empty str)", argument="actor")
    if reason is not None and not isinstance(reason, str):
        raise InvalidArgument(f"reason must be a str, got {type(reason).__name__}",
                              argument="reason")
    if at is None:
        return utc_now()
    if not isinstance(at, str):
        raise InvalidArgument(f"at must be an ISO 8601 time, got {type(at).__name__}",
                              argument="at")
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise InvalidArgument(f"at must be an ISO 8601 time with a time zone "
                              f"(e.g. 2025-06-01T09:00:00Z), got {at!r}", argument="at")
    return at
