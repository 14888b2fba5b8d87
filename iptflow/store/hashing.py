"""Event bodies and the per-course hash chain of the store.

An event is stored as the JSON text of the mapping it was given as (keys in the given order,
no spaces, UTF-8, strict JSON: NaN and Infinity are refused). Each stored event carries::

    hash = "sha256:" + sha256(prev_hash "\\n" course_id "\\n" seq "\\n" body)

where ``prev_hash`` is the previous event's hash and, for the first event (seq 1), the
fingerprint of the resolved protocol the course was opened under. Changing any stored body,
seq, course id or the course's protocol fingerprint breaks the chain from that event on.

A course moved to another protocol (docs/migration.md) has ``protocol_migrated`` records in
the same chain: the record made after event ``k`` is hashed with :func:`migration_hash` on
event ``k``'s hash (or the previous record's), and event ``k + 1`` chains on the record.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from iptflow.engine.jsonio import strict_loads, value_problem
from iptflow.engine.results import Rejection

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def encode_event(event: Mapping[str, Any]) -> str:
    """The stored JSON text of an event. Raises ValueError when it breaks the engine's JSON
    limits (:func:`iptflow.engine.jsonio.value_problem`: nested more than
    :data:`~iptflow.engine.jsonio.MAX_NESTING` levels, an integer too large, a lone surrogate),
    holds NaN, or TypeError if it is not JSON text."""
    problem = value_problem(event)
    if problem is not None:
        raise ValueError(problem)
    return _ENCODER.encode(dict(event))  # json.dumps with these options, without a new encoder


def encoded(
    events: Iterable[Mapping[str, Any]], *, checked: bool = False
) -> list[tuple[str, Mapping[str, Any]]]:
    """Events as ``(stored body, event)`` pairs, as ``Recorder.insert_course`` takes them.
    Raises ValueError naming the event (1-based) that is not storable. ``checked``: the
    engine accepted every event (a course's own history), so they are known to be within the
    JSON limits and only encoded."""
    out = []
    encode = _ENCODER.encode
    for seq, event in enumerate(events, start=1):
        try:
            out.append((encode(event if type(event) is dict else dict(event)) if checked
                        else encode_event(event), event))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"event {seq}: {exc}") from None
    return out


def body_or_rejection(event: Any, etype: str | None) -> str | Rejection:
    """The stored JSON text of an event, or the ``invalid_event`` rejection it gets when it is
    not a JSON object or not storable as JSON text (``etype``: its type, for the rejection)."""
    if not isinstance(event, Mapping):
        return Rejection("invalid_event", "an event must be a JSON object", None)
    try:
        return encode_event(event)
    except (TypeError, ValueError) as exc:
        return Rejection("invalid_event", f"the event is not storable as strict JSON: {exc}",
                         etype if _is_text(etype) else None)


def _is_text(value: Any) -> bool:
    """Whether ``value`` is a str that encodes as UTF-8 (no lone surrogate)."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


#: Parse a stored body: strict JSON, with the engine's decoder for course files.
decode_event = strict_loads


def event_hash(prev_hash: str, course_id: str, seq: int, body: str) -> str:
    text = f"{prev_hash}\n{course_id}\n{seq}\n{body}"
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def migration_hash(prev_hash: str, course_id: str, n: int, body: str) -> str:
    """The hash of a course's ``n``-th ``protocol_migrated`` record (``body``: its JSON),
    chained after ``prev_hash`` like an event; ``"migration N"`` stands where an event has its
    seq, so no record hashes like an event."""
    text = f"{prev_hash}\n{course_id}\nmigration {n}\n{body}"
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
