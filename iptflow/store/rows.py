"""What the store returns when read: course rows, stored events, verify reports, imports and
simulation runs."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from iptflow.store.errors import DamagedStore
from iptflow.store.hashing import decode_event


@dataclass(frozen=True, slots=True)
class CourseRow:
    """A course's row in ``courses``: its protocol, log position and derived summary.

    The summary (state, sessions_held, outcome_status, open_reviews, deviations) is written in
    the same transaction as each event; ``Store.get`` and ``Store.verify`` check it against the
    replayed log.
    """

    id: str
    protocol_id: str
    protocol_version: str
    adaptations: list[str]
    fingerprint: str
    format: str
    state: str
    last_seq: int
    last_hash: str
    created_at: str
    updated_at: str
    synthetic: bool
    sessions_held: int
    outcome_status: str | None
    open_reviews: list[str]
    deviations: int

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> CourseRow:
        """The row as stored; :class:`DamagedStore` if its JSON columns do not parse."""
        try:
            return cls._from_row(row)
        except (KeyError, TypeError, ValueError) as exc:
            raise DamagedStore(
                f"the course row {row.get('id')!r} is damaged: {type(exc).__name__}: {exc}",
                course_id=row.get("id"),
            ) from None

    @classmethod
    def _from_row(cls, row: dict[str, Any]) -> CourseRow:
        return cls(
            id=row["id"],
            protocol_id=row["protocol_id"],
            protocol_version=row["protocol_version"],
            adaptations=json.loads(row["adaptations"]),
            fingerprint=row["fingerprint"],
            format=row["format"],
            state=row["state"],
            last_seq=row["last_seq"],
            last_hash=row["last_hash"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            synthetic=bool(row["synthetic"]),
            sessions_held=row["sessions_held"],
            outcome_status=row["outcome_status"],
            open_reviews=json.loads(row["open_reviews"]),
            deviations=row["deviations"],
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One event of a course's log, with its place in the hash chain.

    ``recorded_at`` is the wall-clock time the store wrote it (audit metadata; never used for
    any decision, not covered by the hash, ``None`` for stores opened with ``clock=None``).
    """

    course_id: str
    seq: int
    type: str
    at: str
    actor: str | None
    event: dict[str, Any]
    prev_hash: str
    hash: str
    idempotency_key: str | None
    recorded_at: str | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> StoredEvent:
        return cls(
            course_id=row["course_id"],
            seq=row["seq"],
            type=row["type"],
            at=row["at"],
            actor=row["actor"],
            event=decode_event(row["body"]),
            prev_hash=row["prev_hash"],
            hash=row["hash"],
            idempotency_key=row["idempotency_key"],
            recorded_at=row["recorded_at"],
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class MigrationRecord:
    """A ``protocol_migrated`` record of a course (docs/migration.md): the course moved from the
    resolved protocol ``from_fingerprint`` to ``to_fingerprint`` after event ``after_seq``.

    ``n`` numbers a course's records (1, 2, ...); ``kind`` is the plan's class (``clean`` or
    ``changes``); the record is chained like an event (``prev_hash``, ``hash``);
    ``recorded_at`` is the wall clock when it was written (audit only, not hashed).
    """

    course_id: str
    n: int
    after_seq: int
    from_fingerprint: str
    to_fingerprint: str
    kind: str
    actor: str
    at: str
    reason: str | None
    prev_hash: str
    hash: str
    recorded_at: str | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> MigrationRecord:
        return cls(
            course_id=row["course_id"],
            n=row["n"],
            after_seq=row["after_seq"],
            from_fingerprint=row["from_fingerprint"],
            to_fingerprint=row["to_fingerprint"],
            kind=row["class"],
            actor=row["actor"],
            at=row["at"],
            reason=row["reason"],
            prev_hash=row["prev_hash"],
            hash=row["hash"],
            recorded_at=row["recorded_at"],
        )

    def to_dict(self) -> dict[str, Any]:
        return {"type": "protocol_migrated", **asdict(self)}


@dataclass(frozen=True, slots=True)
class Problem:
    """Something ``verify`` found wrong. ``seq`` names the first broken event, if any."""

    kind: str
    message: str
    course_id: str | None = None
    seq: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        where = ""
        if self.course_id is not None:
            where = f"course {self.course_id}" + (f" event {self.seq}" if self.seq is not None else "")
            where += ": "
        return f"{where}{self.message}"


@dataclass(slots=True)
class VerifyReport:
    """The result of ``Store.verify``: at most one problem per course (its first)."""

    courses: int = 0
    events: int = 0
    protocols: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "courses": self.courses,
            "events": self.events,
            "protocols": self.protocols,
            "problems": [p.to_dict() for p in self.problems],
        }


@dataclass(frozen=True, slots=True)
class ImportResult:
    """A course file stored by ``Store.import_course_file``."""

    file: str
    course_id: str
    events: int
    skipped: list[dict[str, Any]]
    state: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class SimulationRun:
    """A recorded run of ``iptflow simulate``: what generated a store's synthetic courses."""

    run: int
    protocol: str
    adaptations: list[str]
    fingerprint: str
    n: int
    seed: int
    model: dict[str, Any]
    synthetic: bool

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> SimulationRun:
        return cls(
            run=row["run"],
            protocol=row["protocol"],
            adaptations=json.loads(row["adaptations"]),
            fingerprint=row["fingerprint"],
            n=row["n"],
            seed=row["seed"],
            model=json.loads(row["model"]),
            synthetic=bool(row["synthetic"]),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
