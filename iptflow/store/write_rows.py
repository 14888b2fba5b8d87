"""The rows both backends write for a course: its hash-chained events, its course row, the
conditional update that appends an event, and a protocol row. The recorders
(:mod:`~iptflow.store.recorder`, :mod:`~iptflow.store.postgres`) write them; the hash is
:func:`iptflow.store.hashing.event_hash`. Statements use ``?`` placeholders (PostgreSQL:
``statement``/``replace("?", "%s")``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from iptflow.protocol.models import ResolvedProtocol
from iptflow.store.hashing import event_hash

__all__ = [
    "COURSE_COLUMNS", "INSERT_COURSE", "INSERT_EVENT", "UPDATE_COURSE", "CourseRows", "course_rows",
    "course_update", "event_row", "insert_protocol_row",
]

INSERT_EVENT = (
    "INSERT INTO events (course_id, seq, type, at, actor, body, prev_hash, hash, "
    "idempotency_key, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
COURSE_COLUMNS = (
    "id, fingerprint, protocol_id, protocol_version, adaptations, format, state, last_seq, "
    "last_hash, created_at, updated_at, synthetic, sessions_held, outcome_status, open_reviews, "
    "deviations"
)
INSERT_COURSE = f"INSERT INTO courses ({COURSE_COLUMNS}) VALUES ({', '.join('?' * 16)})"
#: A course row moved on to its next event, only where it is still at the seq and hash the
#: writer knew (``course_update`` gives the parameters); both backends (``?`` placeholders).
UPDATE_COURSE = (
    "UPDATE courses SET state = ?, last_seq = ?, last_hash = ?, updated_at = ?, "
    "sessions_held = ?, outcome_status = ?, open_reviews = ?, deviations = ? "
    "WHERE id = ? AND last_seq = ? AND last_hash = ?"
)


class CourseRows(NamedTuple):
    """A new course's rows, as :func:`course_rows` makes them: its ``courses`` row (in
    :data:`COURSE_COLUMNS` order), its ``course_adaptations`` rows and its hash-chained
    ``events`` rows."""

    course: tuple[Any, ...]
    adaptations: list[tuple[str, str]]
    events: list[tuple[Any, ...]]

    @property
    def last_hash(self) -> str:
        return str(self.course[8])


def insert_protocol_row(resolved: ResolvedProtocol) -> tuple[str, str, str, str, str]:
    """A protocols row: fingerprint, id, version, adaptations (JSON list), canonical JSON."""
    return (
        resolved.fingerprint,
        resolved.id,
        resolved.version,
        json.dumps(resolved.adaptations),
        resolved.canonical_json(),
    )


def course_rows(
    course_id: str,
    resolved: ResolvedProtocol,
    course_format: str,
    derived: Mapping[str, Any],
    events: Sequence[tuple[str, Mapping[str, Any]]],
    *,
    synthetic: bool,
    idempotency_key: str | None,
    recorded_at: str | None,
) -> CourseRows:
    """A new course's rows (both backends insert these): its events ``(body, event)``
    hash-chained from the protocol's fingerprint (``idempotency_key`` on the first), and its
    course row with ``derived`` (``loading.derived_columns``) and the last hash."""
    prev = resolved.fingerprint
    rows = []
    for seq, (body, event) in enumerate(events, start=1):
        rows.append(event_row(course_id, seq, body, event, prev,
                              idempotency_key if seq == 1 else None, recorded_at))
        prev = rows[-1][7]
    course = (
        course_id, resolved.fingerprint, resolved.id, resolved.version,
        json.dumps(resolved.adaptations), course_format, derived["state"], derived["last_seq"],
        prev, events[0][1]["at"], events[-1][1]["at"], 1 if synthetic else 0,
        derived["sessions_held"], derived["outcome_status"], derived["open_reviews"],
        derived["deviations"],
    )
    return CourseRows(course, [(course_id, a) for a in resolved.adaptations], rows)


def course_update(
    derived: Mapping[str, Any], hash_: str, at: str, row: Mapping[str, Any]
) -> tuple[Any, ...]:
    """The parameters of :data:`UPDATE_COURSE`: the course ``row`` (``id``, ``last_seq``,
    ``last_hash``) moved to ``derived`` at the event hashed ``hash_`` and timestamped ``at``."""
    return (
        derived["state"], derived["last_seq"], hash_, at, derived["sessions_held"],
        derived["outcome_status"], derived["open_reviews"], derived["deviations"],
        row["id"], row["last_seq"], row["last_hash"],
    )


def event_row(
    course_id: str,
    seq: int,
    body: str,
    event: Mapping[str, Any],
    prev_hash: str,
    idempotency_key: str | None,
    recorded_at: str | None,
) -> tuple[Any, ...]:
    """An events row; its hash (chained on ``prev_hash``) is at index 7."""
    actor = event.get("actor")
    return (
        course_id,
        seq,
        event["type"],
        event["at"],
        actor if isinstance(actor, str) else None,
        body,
        prev_hash,
        event_hash(prev_hash, course_id, seq, body),
        idempotency_key,
        recorded_at,
    )
