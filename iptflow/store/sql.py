"""SQL that both backends run: the placeholders each one takes, and the few reads of
``iptflow serve`` that the recorders have no method for (:mod:`iptflow.store.tokens` too).

Statements are written with SQLite's ``?`` placeholders; :func:`statement` turns them into
psycopg's ``%s`` for a PostgreSQL recorder. No statement here holds a literal ``?`` or ``%``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["course_filter", "course_ids_with_actor", "statement"]


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


def course_filter(
    *,
    state: str | None = None,
    protocol: str | None = None,
    adaptation: str | None = None,
    synthetic: bool | None = None,
) -> tuple[str, list[Any]]:
    """``SELECT * FROM courses`` filtered by state, protocol (``id``: every version, or
    ``id@version``), adaptation and synthetic flag, ordered by id, with ``?`` placeholders
    (pass it through :func:`statement`), and its parameters. Both recorders build their
    ``course_rows`` query here."""
    where: list[str] = []
    params: list[Any] = []
    if state is not None:
        where.append("state = ?")
        params.append(state)
    if protocol is not None:
        protocol_id, at, version = protocol.partition("@")
        where.append("protocol_id = ?")
        params.append(protocol_id)
        if at:
            where.append("protocol_version = ?")
            params.append(version)
    if adaptation is not None:
        where.append("id IN (SELECT course_id FROM course_adaptations WHERE adaptation = ?)")
        params.append(adaptation)
    if synthetic is not None:
        where.append("synthetic = ?")
        params.append(1 if synthetic else 0)
    sql = "SELECT * FROM courses" + (" WHERE " + " AND ".join(where) if where else "")
    return sql + " ORDER BY id", params
