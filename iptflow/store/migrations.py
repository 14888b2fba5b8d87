"""The store's schema, as ``sqlite_utils.Migrations("iptflow")``.

Each migration is applied once per database, in order, inside a transaction together with its
record in ``_sqlite_migrations``. Names are never renamed and applied migrations are never
edited: a change to the schema is a new migration at the end. ``sqlite-utils migrate DB
iptflow/store/migrations.py`` applies them from the command line too.

Tables:

* ``protocols``: every resolved protocol a course was opened under, as canonical JSON, keyed by
  its fingerprint, so a course always loads with the protocol it was opened under.
* ``courses``: one row per course: its protocol, its position in the log (``last_seq``,
  ``last_hash``) and a derived summary (state, sessions, outcome, reviews, deviations) kept in
  the same transaction as each event; timestamps come from events, not from the clock.
* ``events``: the append-only log, primary key ``(course_id, seq)``, each event's JSON body as
  given, hash-chained per course; triggers refuse ``UPDATE`` and ``DELETE``.
* ``course_adaptations``: one row per (course, adaptation), for filtering by adaptation.
* ``course_migrations``: the append-only ``protocol_migrated`` records of courses moved to
  another resolved protocol (``iptflow migrate``), hash-chained into the course's chain of
  events; triggers refuse ``UPDATE`` and ``DELETE``.
* ``tokens``: the bearer tokens of ``iptflow serve`` (:mod:`iptflow.store.tokens`), each with
  its role and actor and the SHA-256 of its secret, never the secret.
* ``snapshots``: one snapshot of each course's derived state with the seq and hash it was taken
  at (:mod:`iptflow.store.snapshots`); a shortcut for loading, refused when it does not match.
* ``report_courses``, ``report_phase_days``, ``report_trajectories``, ``report_deviations``:
  the per-course facts ``iptflow report`` aggregates in SQL (:mod:`iptflow.store.report_tables`),
  a derived cache current only while it matches the course's row.
"""

from __future__ import annotations

from sqlite_utils import Database, Migrations

migrations = Migrations("iptflow")


@migrations(name="m001_core_tables")
def m001_core_tables(db: Database) -> None:
    db["protocols"].create(
        {
            "fingerprint": str,
            "protocol_id": str,
            "version": str,
            "adaptations": str,  # JSON list
            "resolved": str,  # the resolved protocol's canonical JSON
        },
        pk="fingerprint",
        not_null=["protocol_id", "version", "adaptations", "resolved"],
    )
    db["courses"].create(
        {
            "id": str,
            "fingerprint": str,
            "protocol_id": str,
            "protocol_version": str,
            "adaptations": str,  # JSON list
            "format": str,
            "state": str,
            "last_seq": int,
            "last_hash": str,
            "created_at": str,  # course_opened's "at", as given
            "updated_at": str,  # the last accepted event's "at", as given
            "synthetic": int,  # 1 for simulated courses (research tooling)
            "sessions_held": int,
            "outcome_status": str,
            "open_reviews": str,  # JSON list
            "deviations": int,
        },
        pk="id",
        foreign_keys=[("fingerprint", "protocols", "fingerprint")],
        not_null=[
            "fingerprint", "protocol_id", "protocol_version", "adaptations", "format", "state",
            "last_seq", "last_hash", "created_at", "updated_at", "synthetic", "sessions_held",
            "open_reviews", "deviations",
        ],
        defaults={"synthetic": 0},
    )
    db["events"].create(
        {
            "course_id": str,
            "seq": int,
            "type": str,
            "at": str,
            "actor": str,
            "body": str,  # the event's JSON, as given
            "prev_hash": str,
            "hash": str,
            "idempotency_key": str,
            "recorded_at": str,  # wall clock when written: audit metadata only
        },
        pk=("course_id", "seq"),
        foreign_keys=[("course_id", "courses", "id")],
        not_null=["type", "at", "body", "prev_hash", "hash"],
    )
    db["events"].create_index(
        ["course_id", "idempotency_key"], index_name="events_idempotency_key", unique=True
    )
    db["courses"].create_index(["fingerprint"], index_name="courses_fingerprint")
    db.execute(
        "CREATE TRIGGER events_no_update BEFORE UPDATE ON events "
        "BEGIN SELECT RAISE(ABORT, 'events are append-only'); END"
    )
    db.execute(
        "CREATE TRIGGER events_no_delete BEFORE DELETE ON events "
        "BEGIN SELECT RAISE(ABORT, 'events are append-only'); END"
    )


@migrations(name="m002_course_filters")
def m002_course_filters(db: Database) -> None:
    db["course_adaptations"].create(
        {"course_id": str, "adaptation": str},
        pk=("course_id", "adaptation"),
        foreign_keys=[("course_id", "courses", "id")],
    )
    db["course_adaptations"].create_index(["adaptation"], index_name="course_adaptations_adaptation")
    db["courses"].create_index(["state"], index_name="courses_state")
    db["courses"].create_index(["protocol_id"], index_name="courses_protocol_id")
    db.execute(
        "INSERT INTO course_adaptations (course_id, adaptation) "
        "SELECT courses.id, value FROM courses, json_each(courses.adaptations)"
    )


@migrations(name="m003_simulation_runs")
def m003_simulation_runs(db: Database) -> None:
    """Runs of ``iptflow simulate``: what generated the synthetic courses of this store."""
    if not db["simulation_runs"].exists():  # stores written before this migration created it ad hoc
        db["simulation_runs"].create(
            {"run": int, "protocol": str, "adaptations": str, "fingerprint": str, "n": int,
             "seed": int, "model": str, "synthetic": int},
            pk="run",
        )


@migrations(name="m004_course_migrations")
def m004_course_migrations(db: Database) -> None:
    """Protocol migrations of courses (docs/migration.md): one row per ``protocol_migrated``
    record, chained after the event ``after_seq`` of its course."""
    db["course_migrations"].create(
        {
            "course_id": str,
            "n": int,  # 1, 2, ... per course
            "after_seq": int,  # the course's last event when it migrated
            "from_fingerprint": str,
            "to_fingerprint": str,
            "class": str,  # clean or changes
            "actor": str,
            "at": str,
            "reason": str,
            "body": str,  # the record's JSON, as hashed
            "prev_hash": str,
            "hash": str,
            "recorded_at": str,  # wall clock when written: audit metadata only
        },
        pk=("course_id", "n"),
        foreign_keys=[
            ("course_id", "courses", "id"),
            ("from_fingerprint", "protocols", "fingerprint"),
            ("to_fingerprint", "protocols", "fingerprint"),
        ],
        not_null=["after_seq", "from_fingerprint", "to_fingerprint", "class", "actor", "at",
                  "body", "prev_hash", "hash"],
    )
    db.execute(
        "CREATE TRIGGER course_migrations_no_update BEFORE UPDATE ON course_migrations "
        "BEGIN SELECT RAISE(ABORT, 'migration records are append-only'); END"
    )
    db.execute(
        "CREATE TRIGGER course_migrations_no_delete BEFORE DELETE ON course_migrations "
        "BEGIN SELECT RAISE(ABORT, 'migration records are append-only'); END"
    )


@migrations(name="m005_tokens")
def m005_tokens(db: Database) -> None:
    """Bearer tokens of ``iptflow serve`` (docs/service.md): only the SHA-256 of each secret is
    stored; a revoked token keeps its row, with the time it was revoked."""
    db["tokens"].create(
        {
            "id": str,  # the token's public id (tok_...), shown by ``iptflow token list``
            "secret_sha256": str,  # hex SHA-256 of the secret; the secret itself is never stored
            "role": str,  # clinician, researcher, auditor or admin
            "actor": str,  # who acts with it: the events' actor
            "label": str,
            "created_at": str,
            "revoked_at": str,
        },
        pk="id",
        not_null=["secret_sha256", "role", "actor", "created_at"],
    )
    db["tokens"].create_index(["secret_sha256"], index_name="tokens_secret_sha256", unique=True)


@migrations(name="m006_snapshots")
def m006_snapshots(db: Database) -> None:
    """One snapshot of each course's derived state (:mod:`iptflow.store.snapshots`): a
    shortcut for loading, never the truth; replaced as the course grows."""
    db["snapshots"].create(
        {
            "course_id": str,
            "seq": int,  # the last event the snapshot includes
            "hash": str,  # that event's hash
            "format": int,  # iptflow.engine.snapshot.SNAPSHOT_FORMAT
            "engine": str,  # the iptflow version that wrote it
            "fingerprint": str,  # the resolved protocol the course ran on
            "body": str,  # Course.to_snapshot() as JSON
            "digest": str,  # sha256 over the course id and every column above
        },
        pk="course_id",
        not_null=["seq", "hash", "format", "engine", "fingerprint", "body", "digest"],
    )


@migrations(name="m007_report_tables")
def m007_report_tables(db: Database) -> None:
    """The report tables (:mod:`iptflow.store.report_tables`): per course, what ``iptflow
    report`` aggregates and no other table derives; a cache, recomputed when stale."""
    db["report_courses"].create(
        {"course_id": str, "seq": int, "last_hash": str, "fingerprint": str, "instrument": str},
        pk="course_id",
        not_null=["seq", "last_hash", "fingerprint"],
    )
    db["report_phase_days"].create(
        {"course_id": str, "phase": str, "days": float}, pk=("course_id", "phase"),
        not_null=["days"],
    )
    # the report's medians read each phase's days in order from this index
    db["report_phase_days"].create_index(["phase", "days"], index_name="report_phase_days_phase")
    db["report_trajectories"].create(  # status: the course's outcome status, as in courses
        {"course_id": str, "phase": str, "pct": float, "status": str}, pk=("course_id", "phase"),
        not_null=["pct", "status"],
    )
    # the report's mean trajectories read (status, phase, pct) in order from this index
    db["report_trajectories"].create_index(["status", "phase", "pct"],
                                           index_name="report_trajectories_status")
    db["report_deviations"].create(
        {"course_id": str, "code": str, "n": int}, pk=("course_id", "code"), not_null=["n"],
    )


#: Migrations a store opened read-only may lack: each only adds a table whose absence reads as
#: empty (no course was ever migrated), so an older store can still be verified and read
#: without writing to it; opening it for writing applies them.
READ_OPTIONAL: frozenset[str] = frozenset(
    {"m004_course_migrations", "m005_tokens", "m006_snapshots", "m007_report_tables"}
)

#: The names of every migration this release knows, in order (a store recording another name
#: was written by a newer release: ``NewerSchema``).
KNOWN_MIGRATIONS: tuple[str, ...] = tuple(m.name for m in migrations.pending(Database(memory=True)))
