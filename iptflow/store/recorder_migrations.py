"""The recorder's SQL for ``protocol_migrated`` records (table ``course_migrations``, migration
m004): reading them, and re-pinning a course to another resolved protocol.

:class:`MigrationRecords` is a part of :class:`~iptflow.store.recorder.Recorder` (it inherits
it), kept in its own module so that the recorder stays readable; like every recorder method,
these run inside transactions the store opens and know nothing of courses beyond the values
they are given. docs/migration.md says what a migration is; docs/store.md the chain.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from typing import Any

from iptflow.protocol.models import ResolvedProtocol
from iptflow.store.hashing import encode_event, migration_hash
from iptflow.store.sql import statement

__all__ = ["MigrationRecords", "StaleCourse"]

Row = dict[str, Any]

_INSERT = (
    "INSERT INTO course_migrations (course_id, n, after_seq, from_fingerprint, to_fingerprint, "
    'class, actor, at, reason, body, prev_hash, hash, recorded_at) '
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class StaleCourse(Exception):
    """The course row is not the one the migration was decided on (another writer appended)."""


class MigrationRecords:
    """Reads and writes of ``course_migrations``; a store whose schema lacks the table (opened
    read-only before migration m004 was applied) reads as having no migration record."""

    conn: sqlite3.Connection
    _has_migrations_table: bool = False

    def _migrations_table(self) -> bool:
        if not self._has_migrations_table:  # once there, it stays (read-only opens may lack it)
            with self.mapped():  # type: ignore[attr-defined]
                self._has_migrations_table = self.conn.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'course_migrations'"
                ).fetchone() is not None
        return self._has_migrations_table

    def course_migrations(self, course_id: str) -> list[Row]:
        """A course's migration records, in order (``n`` = 1, 2, ...)."""
        if not self._migrations_table():
            return []
        return self.rows(  # type: ignore[attr-defined, no-any-return]
            statement(self, "SELECT * FROM course_migrations WHERE course_id = ? ORDER BY n"),
            (course_id,),
        )

    def all_course_migrations(self) -> dict[str, list[Row]]:
        """Every course's migration records, by course id, each list in order."""
        out: dict[str, list[Row]] = {}
        if not self._migrations_table():
            return out
        for row in self.rows(  # type: ignore[attr-defined]
            "SELECT * FROM course_migrations ORDER BY course_id, n"
        ):
            out.setdefault(row["course_id"], []).append(row)
        return out

    def insert_migration(
        self,
        row: Mapping[str, Any],
        record: Mapping[str, Any],
        resolved: ResolvedProtocol,
        derived: Mapping[str, Any],
        *,
        recorded_at: str | None,
    ) -> str:
        """Re-pin the course whose current row is ``row`` to ``resolved``: store the protocol
        (unless stored), append the ``protocol_migrated`` ``record`` to the course's chain and
        update its row (protocol, adaptations, ``derived`` summary, last hash); return the
        record's hash. Raises :class:`StaleCourse` when the row changed since it was read.

        ``record`` holds ``after_seq``, ``from``, ``to``, ``class``, ``actor``, ``at`` and
        ``reason``; its stored body is its JSON (with ``type`` ``protocol_migrated`` first).
        """
        course_id = row["id"]
        body = encode_event({"type": "protocol_migrated", **record})
        n = 1 + int(self.conn.execute(
            "SELECT count(*) FROM course_migrations WHERE course_id = ?", (course_id,)
        ).fetchone()[0])
        hash_ = migration_hash(row["last_hash"], course_id, n, body)
        self.insert_protocol(resolved)  # type: ignore[attr-defined]
        self.conn.execute(_INSERT, (
            course_id, n, record["after_seq"], record["from"], record["to"], record["class"],
            record["actor"], record["at"], record["reason"], body, row["last_hash"], hash_,
            recorded_at,
        ))
        updated = self.conn.execute(
            "UPDATE courses SET fingerprint = ?, protocol_id = ?, protocol_version = ?, "
            "adaptations = ?, state = ?, sessions_held = ?, outcome_status = ?, open_reviews = ?, "
            "deviations = ?, last_hash = ? WHERE id = ? AND last_seq = ? AND last_hash = ?",
            (
                resolved.fingerprint, resolved.id, resolved.version,
                json.dumps(resolved.adaptations), derived["state"], derived["sessions_held"],
                derived["outcome_status"], derived["open_reviews"], derived["deviations"], hash_,
                course_id, row["last_seq"], row["last_hash"],
            ),
        ).rowcount
        if updated != 1:
            raise StaleCourse(course_id)
        self.conn.execute("DELETE FROM course_adaptations WHERE course_id = ?", (course_id,))
        self.conn.executemany(
            "INSERT INTO course_adaptations (course_id, adaptation) VALUES (?, ?)",
            [(course_id, a) for a in resolved.adaptations],
        )
        return hash_
