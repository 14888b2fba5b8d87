"""Helpers for the store tests: event builders and a content fingerprint of a database file.

Nothing here decides a test's answer: it builds events (SPEC §1) and reads databases.
"""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pg_support import content, is_pg

from iptflow.research.demo import demo_events

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
TABLES = ("protocols", "courses", "events", "course_adaptations", "_sqlite_migrations")


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def opened(course_id: str = "c-001", **fields: Any) -> dict[str, Any]:
    return {"type": "course_opened", "at": iso(T0), "course_id": course_id,
            "protocol": "ipt-depression@1.0.0", **fields}


def measure_for_seq(seq: int, score: int = 10, actor: str | None = None) -> dict[str, Any]:
    """A measure_recorded event meant to become event ``seq``; its time grows with seq, so any
    number of them can follow each other in the assessment state."""
    event: dict[str, Any] = {"type": "measure_recorded", "at": iso(T0 + timedelta(minutes=seq)),
                             "instrument": "phq9", "score": score}
    if actor is not None:
        event["actor"] = actor
    return event


def course_with_deviations(course_id: str = "dev-001") -> list[dict[str, Any]]:
    """The demo course with a three-week pause before its 4th session (a session_gap)."""
    events = demo_events(course_id)
    out = []
    shifted = False
    for event in events:
        if event["type"] == "session_held" and event.get("number") == 4:
            shifted = True
        if shifted:
            moment = datetime.strptime(event["at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            event = {**event, "at": iso(moment + timedelta(days=21))}
        out.append(event)
    return out


def db_content(path: Path | str) -> dict[str, tuple[int, str]]:
    """Row count and a SHA-256 of every row, per table, read through a separate connection
    (a SQLite file, or a PostgreSQL URL: tests/pg_support.py)."""
    if is_pg(path):
        return content(path, (*TABLES[:-1], "iptflow_migrations"))
    conn = sqlite3.connect(str(path))
    try:
        out = {}
        for table in TABLES:
            rows = conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
            digest = hashlib.sha256(repr(rows).encode()).hexdigest()
            out[table] = (len(rows), digest)
        return out
    finally:
        conn.close()
