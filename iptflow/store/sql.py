"""SQL that both backends run: the placeholders each one takes, and the few reads of
``iptflow serve`` that the recorders have no method for (:mod:`iptflow.store.tokens` too).

Statements are written with SQLite's ``?`` placeholders; :func:`statement` turns them into
psycopg's ``%s`` for a PostgreSQL recorder. No statement here holds a literal ``?`` or ``%``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["course_ids_with_actor", "statement"]


def statement(recorder: Any, sql: str) -> str:
    """``sql`` (``?`` placeholders) as ``recorder``'s backend takes it."""
    if getattr(recorder, "backend", "sqlite") == "postgresql":
        return sql.replace("?", "%s")
    return sql


def course_ids_with_actor(recorder: Any, actor: str) -> set[str]:
    """The ids of the courses in which ``actor`` recorded at least one event."""
    rows = recorder.rows(statement(recorder, "SELECT DISTINCT course_id FROM events WHERE actor = ?"),
                         (actor,))
    return {r["course_id"] for r in rows}
