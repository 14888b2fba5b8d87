"""PostgreSQL store figures: durable append and bulk import against raw psycopg on the same
server (issue 14). Run ``python bench/postgres_figures.py [--quick] [--json]``.

The server is the one the tests start (tests/pg_support.py: PostgreSQL 15, fsync on,
synchronous_commit on, shared_buffers=16MB, loopback TCP). Each round runs the baseline and
the subject back to back, their order alternating (bench/harness.py).

* **pg_durable_append**: one ``Store.apply`` per event (its own transaction: lock the course
  row, insert the event, update the course row, commit) against raw psycopg doing one
  ``INSERT`` of the same row into a table with the columns of the store's ``events`` per
  transaction. *store_sql_without_engine*: the store's statements for an append without the
  engine (``SELECT ... FOR UPDATE``, ``INSERT``, ``UPDATE``, ``COMMIT``).
* **pg_bulk_import**: ``Store.import_many(course files)`` (replayed, hash-chained, one
  transaction, events through ``COPY``) against reading the same files, ``json.loads`` of each
  line and one ``COPY`` of the same rows in one transaction. *replay_only_no_store*: replaying
  the files with the engine, nothing written.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import baseline  # noqa: E402
import psycopg  # noqa: E402
import store_figures  # noqa: E402
import workload  # noqa: E402
from harness import compare  # noqa: E402
from pg_support import PgServer, missing  # noqa: E402

from iptflow import default_registry  # noqa: E402
from iptflow.engine.replay import replay_file  # noqa: E402
from iptflow.store.api import Store  # noqa: E402

_COLUMNS = "course_id, seq, type, at, actor, body, prev_hash, hash, idempotency_key, recorded_at"
_RAW_TABLE = (
    "CREATE TABLE events (course_id text NOT NULL, seq bigint NOT NULL, type text NOT NULL, "
    "at text NOT NULL, actor text, body text NOT NULL, prev_hash text NOT NULL, "
    "hash text NOT NULL, idempotency_key text, recorded_at text, PRIMARY KEY (course_id, seq))"
)


def _raw(url: str) -> Any:
    conn = psycopg.connect(url, autocommit=True)
    conn.execute(_RAW_TABLE)
    return conn


def durable_append(server: PgServer, rounds: int, n_events: int) -> dict[str, Any]:
    templates = store_figures.clean_courses(8)
    plan: list[tuple[int, int, int]] = []
    course = 0
    while len(plan) < n_events:
        ti = course % len(templates)
        plan += [(course, ti, i) for i in range(1, len(templates[ti]))]
        course += 1
    plan = plan[:n_events]
    used = sorted({(c, ti) for c, ti, _ in plan})
    store = Store.open(server.fresh_url())
    sql_store = Store.open(server.fresh_url())
    raw = _raw(server.fresh_url())
    for r in range(rounds + 1):
        for c, ti in used:
            store.open_course(dict(templates[ti][0], course_id=f"a-{r}-{c}"))
            sql_store.open_course(dict(templates[ti][0], course_id=f"a-{r}-{c}"))
    round_of = {k: iter(range(rounds + 1)) for k in ("store", "raw", "sql")}
    insert = f"INSERT INTO events ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"

    def subject() -> None:
        r = next(round_of["store"])
        for c, ti, i in plan:
            if not store.apply(f"a-{r}-{c}", templates[ti][i]).ok:
                raise RuntimeError("the store rejected a clean event")

    def base() -> None:
        r = next(round_of["raw"])
        for c, ti, i in plan:
            with raw.transaction():
                raw.execute(insert, baseline.row(f"a-{r}-{c}", i + 1, templates[ti][i]))

    def store_sql() -> None:
        r = next(round_of["sql"])
        conn = sql_store.conn
        for c, ti, i in plan:
            cid = f"a-{r}-{c}"
            with conn.transaction():
                conn.execute("SELECT * FROM courses WHERE id = %s FOR UPDATE", (cid,)).fetchone()
                conn.execute(insert, baseline.row(cid, i + 1, templates[ti][i]))
                conn.execute("UPDATE courses SET last_seq = %s, updated_at = %s WHERE id = %s",
                             (i + 1, templates[ti][i]["at"], cid))

    subject()
    base()
    store_sql()
    fig = compare(
        rounds, subject, base, lambda seconds: seconds / n_events * 1e6, unit="us/event",
        baseline_name="raw psycopg, one INSERT per transaction (synchronous_commit=on)",
        target=1.3,
        note=f"{n_events} events, PostgreSQL 15 on loopback TCP, fsync on; also: the store's "
             "SQL for an append (row lock, insert, update) without the engine",
        also={"store_sql_without_engine": store_sql},
    )
    store.close()
    sql_store.close()
    raw.close()
    return fig


def bulk_import(server: PgServer, rounds: int, n_courses: int, tmp: Path) -> dict[str, Any]:
    courses = store_figures.clean_courses(n_courses)
    events = sum(len(c) for c in courses)
    paths = workload.write_course_files(tmp / "files", courses)
    registry = default_registry()
    stores: list[Store] = []
    raws: list[Any] = []

    def prepare() -> None:  # schemas are created outside the timed calls
        stores.append(Store.open(server.fresh_url()))
        raws.append(_raw(server.fresh_url()))

    def subject() -> None:
        store = stores.pop()
        store.import_many(paths)
        store.close()

    def base() -> None:
        raw = raws.pop()
        rows = baseline.rows_of_files(paths)
        with raw.transaction(), raw.cursor() as cur, cur.copy(
            f"COPY events ({_COLUMNS}) FROM STDIN"
        ) as copy:
            for row in rows:
                copy.write_row(row)
        raw.close()

    def replay_only() -> None:
        for path in paths:
            replay_file(path, registry)

    for _ in range(rounds + 1):
        prepare()
    subject()
    base()
    return compare(
        rounds, subject, base, lambda seconds: events / seconds, unit="events/s",
        baseline_name="read files + json.loads + one COPY of the same rows, one transaction",
        target=2.0,
        note=f"{len(paths)} course files, {events} events; also: replaying the same files "
             "with the engine, nothing written (the validation an import does)",
        also={"replay_only_no_store": replay_only},
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    reason = missing()
    if reason is not None:
        print(json.dumps({"not_available": f"missing {reason}"}))
        return 0
    rounds = 2 if args.quick else 7
    server = PgServer().start()
    try:
        report = {
            "pg_durable_append": durable_append(server, rounds, 100 if args.quick else 600),
            "pg_bulk_import": bulk_import(server, rounds, 40 if args.quick else 500, server.dir),
            "server": psycopg.connect(server.url()).execute("SHOW server_version").fetchone()[0],
        }
    finally:
        server.stop()
    print(json.dumps(report, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
