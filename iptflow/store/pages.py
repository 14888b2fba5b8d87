"""Paged reads for streaming a whole store (exports, reports): course rows by id, event rows by
(course id, seq), a page at a time, with keyset pagination (each page starts after the last
key of the one before, through the primary key's index). SQLite and its PostgreSQL twin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Row = dict[str, Any]

_EVENTS = "SELECT * FROM events WHERE (course_id, seq) > ({p}, {p}){typed} ORDER BY course_id, seq LIMIT {p}"


def _event_query(placeholder: str, after: tuple[str, int], limit: int,
                 event_type: str | None) -> tuple[str, tuple[Any, ...]]:
    typed = "" if event_type is None else f" AND type = {placeholder}"
    params = (*after, *(() if event_type is None else (event_type,)), limit)
    return _EVENTS.format(p=placeholder, typed=typed), params


class PageReads:
    """Paged reads of the SQLite recorder (``rows`` maps its errors)."""

    rows: Callable[..., list[Row]]  # the recorder's: one SELECT, each row as a dict

    def course_page(self, after: str, limit: int) -> list[Row]:
        """At most ``limit`` course rows with ``id`` > ``after``, by id."""
        return self.rows("SELECT * FROM courses WHERE id > ? ORDER BY id LIMIT ?", (after, limit))

    def event_page(self, after: tuple[str, int], limit: int, event_type: str | None = None) -> list[Row]:
        """At most ``limit`` event rows after ``(course_id, seq)``, in that order, only of
        ``event_type`` when given."""
        return self.rows(*_event_query("?", after, limit, event_type))


class PgPageReads(PageReads):
    """The PostgreSQL twin of :class:`PageReads` (``%s`` placeholders)."""

    def course_page(self, after: str, limit: int) -> list[Row]:
        return self.rows("SELECT * FROM courses WHERE id > %s ORDER BY id LIMIT %s", (after, limit))

    def event_page(self, after: tuple[str, int], limit: int, event_type: str | None = None) -> list[Row]:
        return self.rows(*_event_query("%s", after, limit, event_type))
