"""The PostgreSQL store's schema: the same tables, columns and migration names as the SQLite
store (:mod:`iptflow.store.migrations`), written as PostgreSQL SQL.

Each migration is applied once per schema, in order, in one transaction together with its row
in ``iptflow_migrations`` (``name``, ``position``, ``applied_at``), under an advisory lock so
that processes opening a new database at the same moment apply it once. A migration is never
renamed or edited: a change is a new migration at the end, added to both backends under one
name (``tests/test_store_postgres.py`` checks that every SQLite migration has its PostgreSQL
twin).

Events are append-only in the database itself: a trigger raises on ``UPDATE``, ``DELETE`` and
``TRUNCATE`` of ``events``; docs/deploy.md adds the privileges an application role needs
(``INSERT`` and ``SELECT`` on ``events``, never ``UPDATE`` or ``DELETE``).
"""

from __future__ import annotations

from iptflow.store.postgres_migrations import M004_COURSE_MIGRATIONS
from iptflow.store.report_tables import M007_REPORT_TABLES
from iptflow.store.snapshots import M006_SNAPSHOTS
from iptflow.store.tokens import M005_TOKENS

__all__ = ["MIGRATIONS", "MIGRATIONS_TABLE"]

MIGRATIONS_TABLE = "iptflow_migrations"

_M001 = (
    """CREATE TABLE protocols (
        fingerprint text PRIMARY KEY,
        protocol_id text NOT NULL,
        version text NOT NULL,
        adaptations text NOT NULL,
        resolved text NOT NULL
    )""",
    """CREATE TABLE courses (
        id text PRIMARY KEY,
        fingerprint text NOT NULL REFERENCES protocols (fingerprint),
        protocol_id text NOT NULL,
        protocol_version text NOT NULL,
        adaptations text NOT NULL,
        format text NOT NULL,
        state text NOT NULL,
        last_seq bigint NOT NULL,
        last_hash text NOT NULL,
        created_at text NOT NULL,
        updated_at text NOT NULL,
        synthetic integer NOT NULL DEFAULT 0,
        sessions_held bigint NOT NULL,
        outcome_status text,
        open_reviews text NOT NULL,
        deviations bigint NOT NULL
    )""",
    """CREATE TABLE events (
        course_id text NOT NULL REFERENCES courses (id),
        seq bigint NOT NULL,
        type text NOT NULL,
        at text NOT NULL,
        actor text,
        body text NOT NULL,
        prev_hash text NOT NULL,
        hash text NOT NULL,
        idempotency_key text,
        recorded_at text,
        PRIMARY KEY (course_id, seq)
    )""",
    "CREATE UNIQUE INDEX events_idempotency_key ON events (course_id, idempotency_key)",
    "CREATE INDEX courses_fingerprint ON courses (fingerprint)",
    """CREATE FUNCTION iptflow_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'events are append-only' USING ERRCODE = 'integrity_constraint_violation';
    END $$""",
    "CREATE TRIGGER events_no_update BEFORE UPDATE ON events "
    "FOR EACH ROW EXECUTE FUNCTION iptflow_events_append_only()",
    "CREATE TRIGGER events_no_delete BEFORE DELETE ON events "
    "FOR EACH ROW EXECUTE FUNCTION iptflow_events_append_only()",
    "CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events "
    "FOR EACH STATEMENT EXECUTE FUNCTION iptflow_events_append_only()",
)

_M002 = (
    """CREATE TABLE course_adaptations (
        course_id text NOT NULL REFERENCES courses (id),
        adaptation text NOT NULL,
        PRIMARY KEY (course_id, adaptation)
    )""",
    "CREATE INDEX course_adaptations_adaptation ON course_adaptations (adaptation)",
    "CREATE INDEX courses_state ON courses (state)",
    "CREATE INDEX courses_protocol_id ON courses (protocol_id)",
    "INSERT INTO course_adaptations (course_id, adaptation) "
    "SELECT courses.id, a FROM courses, jsonb_array_elements_text(courses.adaptations::jsonb) a",
)

_M003 = (
    """CREATE TABLE IF NOT EXISTS simulation_runs (
        run bigint PRIMARY KEY,
        protocol text,
        adaptations text,
        fingerprint text,
        n bigint,
        seed bigint,
        model text,
        synthetic integer
    )""",
)

#: Every migration, in order: (name, statements). Names match the SQLite store's.
MIGRATIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("m001_core_tables", _M001),
    ("m002_course_filters", _M002),
    ("m003_simulation_runs", _M003),
    ("m004_course_migrations", M004_COURSE_MIGRATIONS),
    ("m005_tokens", M005_TOKENS),
    ("m006_snapshots", M006_SNAPSHOTS),
    ("m007_report_tables", M007_REPORT_TABLES),
)
