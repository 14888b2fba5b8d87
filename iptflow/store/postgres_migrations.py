"""The PostgreSQL twin of :mod:`iptflow.store.recorder_migrations`: the SQL of
``protocol_migrated`` records (table ``course_migrations``, migration m004) for
:class:`~iptflow.store.postgres.PgRecorder`, which inherits :class:`PgMigrationRecords`.

The records, their hashes and the re-pinned course row are exactly those the SQLite store
writes (docs/migration.md); ``store copy`` carries them from one backend to the other.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from iptflow.protocol.models import ResolvedProtocol
from iptflow.store.hashing import encode_event, migration_hash
from iptflow.store.recorder_migrations import MigrationRecords, StaleCourse

__all__ = ["M004_COURSE_MIGRATIONS", "PgMigrationRecords"]

Row = dict[str, Any]

#: Migration m004 on PostgreSQL (the SQLite store's ``m004_course_migrations``).
M004_COURSE_MIGRATIONS = (
    """CREATE TABLE course_migrations (
        course_id text NOT NULL REFERENCES courses (id),
        n bigint NOT NULL,
        after_seq bigint NOT NULL,
        from_fingerprint text NOT NULL REFERENCES protocols (fingerprint),
        to_fingerprint text NOT NULL REFERENCES protocols (fingerprint),
        class text NOT NULL,
        actor text NOT NULL,
        at text NOT NULL,
        reason text,
        body text NOT NULL,
        prev_hash text NOT NULL,
        hash text NOT NULL,
        recorded_at text,
        PRIMARY KEY (course_id, n)
    )""",
    """CREATE FUNCTION iptflow_migrations_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'migration records are append-only'
            USING ERRCODE = 'integrity_constraint_violation';
    END $$""",
    "CREATE TRIGGER course_migrations_no_update BEFORE UPDATE ON course_migrations "
    "FOR EACH ROW EXECUTE FUNCTION iptflow_migrations_append_only()",
    "CREATE TRIGGER course_migrations_no_delete BEFORE DELETE ON course_migrations "
    "FOR EACH ROW EXECUTE FUNCTION iptflow_migrations_append_only()",
    "CREATE TRIGGER course_migrations_no_truncate BEFORE TRUNCATE ON course_migrations "
    "FOR EACH STATEMENT EXECUTE FUNCTION iptflow_migrations_append_only()",
)

_INSERT = (
    "INSERT INTO course_migrations (course_id, n, after_seq, from_fingerprint, to_fingerprint, "
    "class, actor, at, reason, body, prev_hash, hash, recorded_at) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


class PgMigrationRecords(MigrationRecords):
    """Reads and writes of ``course_migrations`` on PostgreSQL; a schema without the table
    (opened read-only before m004 was applied) reads as having no migration record. The reads
    are :class:`~iptflow.store.recorder_migrations.MigrationRecords`'; what differs is how the
    table is looked up and the write."""

    conn: Any
    _has_migrations_table: bool = False

    def _migrations_table(self) -> bool:
        if not self._has_migrations_table:
            self._has_migrations_table = "course_migrations" in self.tables()  # type: ignore[attr-defined]
        return self._has_migrations_table

    def insert_migration(
        self,
        row: Mapping[str, Any],
        record: Mapping[str, Any],
        resolved: ResolvedProtocol,
        derived: Mapping[str, Any],
        *,
        recorded_at: str | None,
    ) -> str:
        """As :meth:`MigrationRecords.insert_migration
        <iptflow.store.recorder_migrations.MigrationRecords.insert_migration>`."""
        course_id = row["id"]
        body = encode_event({"type": "protocol_migrated", **record})
        self.insert_protocol(resolved)  # type: ignore[attr-defined]
        with self.mapped():  # type: ignore[attr-defined]
            n = 1 + int(self.conn.execute(
                "SELECT count(*) AS n FROM course_migrations WHERE course_id = %s", (course_id,)
            ).fetchone()["n"])
            hash_ = migration_hash(row["last_hash"], course_id, n, body)
            self.conn.execute(_INSERT, (
                course_id, n, record["after_seq"], record["from"], record["to"], record["class"],
                record["actor"], record["at"], record["reason"], body, row["last_hash"], hash_,
                recorded_at,
            ))
            updated = self.conn.execute(
                "UPDATE courses SET fingerprint = %s, protocol_id = %s, protocol_version = %s, "
                "adaptations = %s, state = %s, sessions_held = %s, outcome_status = %s, "
                "open_reviews = %s, deviations = %s, last_hash = %s "
                "WHERE id = %s AND last_seq = %s AND last_hash = %s",
                (
                    resolved.fingerprint, resolved.id, resolved.version,
                    json.dumps(resolved.adaptations), derived["state"], derived["sessions_held"],
                    derived["outcome_status"], derived["open_reviews"], derived["deviations"],
                    hash_, course_id, row["last_seq"], row["last_hash"],
                ),
            ).rowcount
            if updated != 1:
                raise StaleCourse(course_id)
            self.conn.execute("DELETE FROM course_adaptations WHERE course_id = %s", (course_id,))
            if resolved.adaptations:
                with self.conn.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO course_adaptations (course_id, adaptation) VALUES (%s, %s)",
                        [(course_id, a) for a in resolved.adaptations],
                    )
        return hash_
